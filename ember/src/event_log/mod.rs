//! Event logs in Spark's format (Spark's `EventLoggingListener` and `JsonProtocol`): with
//! `ember.eventLog.enabled`, every event of the application is written as one JSON line to
//! `ember.eventLog.dir/<application id>` (`.lz4` when compressed), named `….inprogress` until
//! the application ends. Spark's History Server opens these logs.
//!
//! Ember writes one uncompressed file by default (Spark 4 compresses with zstd and rolls files
//! by default; its History Server reads both forms): `ember.eventLog.compress=true` writes
//! Spark's lz4 framing. Rolling logs are not written.

pub mod json;
pub mod lz4;
mod task_json;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use tracing::{error, info};

use crate::conf::{self, EmberConf};
use crate::error::{EmberError, Result};
use crate::listener::events::ListenerEvent;
use crate::listener::EventSink;

/// Where the log goes and how.
#[derive(Clone, Debug)]
pub struct EventLogSettings {
    /// The directory (`ember.eventLog.dir`, a path or a `file:` URI).
    pub dir: PathBuf,
    /// Compress with Spark's lz4 framing.
    pub compress: bool,
    /// Replace a log of the same name.
    pub overwrite: bool,
    /// Write block updates too.
    pub log_block_updates: bool,
    /// The writer's buffer, in bytes.
    pub buffer: usize,
}

impl EventLogSettings {
    /// The settings from `ember.eventLog.*`; `None` when event logs are off.
    pub fn from_conf(conf: &EmberConf) -> Result<Option<Self>> {
        if !conf.get_bool(conf::EVENT_LOG_ENABLED)? {
            return Ok(None);
        }
        let raw = conf.get(conf::EVENT_LOG_DIR);
        let dir = PathBuf::from(
            raw.strip_prefix("file://")
                .or_else(|| raw.strip_prefix("file:"))
                .unwrap_or(raw),
        );
        let compress = conf.get_bool(conf::EVENT_LOG_COMPRESS)?;
        let codec = conf.get(conf::EVENT_LOG_COMPRESSION_CODEC);
        if compress && !codec.eq_ignore_ascii_case("lz4") {
            return Err(EmberError::Config {
                key: conf::EVENT_LOG_COMPRESSION_CODEC.into(),
                value: codec.into(),
                reason: "Ember writes event logs uncompressed or with lz4 (Spark's framing, which \
                         the History Server reads)"
                    .into(),
            });
        }
        Ok(Some(EventLogSettings {
            dir,
            compress,
            overwrite: conf.get_bool(conf::EVENT_LOG_OVERWRITE)?,
            log_block_updates: conf.get_bool(conf::EVENT_LOG_LOG_BLOCK_UPDATES)?,
            buffer: conf
                .get_size_bytes(conf::EVENT_LOG_BUFFER)?
                .clamp(1024, 64 << 20) as usize,
        }))
    }

    /// The final name of an application's log (Spark's `EventLogFileWriter.nameForAppAndAttempt`
    /// plus the codec's short name).
    pub fn file_name(&self, app_id: &str) -> String {
        if self.compress {
            format!("{app_id}.lz4")
        } else {
            app_id.to_string()
        }
    }
}

/// Suffix of a log being written (Spark's `IN_PROGRESS`).
pub const IN_PROGRESS: &str = ".inprogress";

enum Out {
    Plain(BufWriter<File>),
    Lz4(lz4::Lz4BlockWriter<BufWriter<File>>),
}

impl Out {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Out::Plain(w) => w,
            Out::Lz4(w) => w,
        }
    }
}

/// Writes the events it is given to the application's log (a listener on the bus's `eventLog`
/// queue).
pub struct EventLogWriter {
    out: Option<Out>,
    in_progress: PathBuf,
    target: PathBuf,
    log_block_updates: bool,
    line: Vec<u8>,
    /// An event that marks progress was written since the last flush.
    unflushed: bool,
}

impl EventLogWriter {
    /// Creates `DIR/<app_id>[.lz4].inprogress` and writes `SparkListenerLogStart` to it.
    pub fn create(settings: &EventLogSettings, app_id: &str) -> Result<Self> {
        let dir = &settings.dir;
        if !dir.is_dir() {
            return Err(EmberError::Config {
                key: conf::EVENT_LOG_DIR.into(),
                value: dir.display().to_string(),
                reason: "Log directory does not exist (create it, or set ember.eventLog.dir)"
                    .into(),
            });
        }
        let target = dir.join(settings.file_name(app_id));
        let in_progress = PathBuf::from(format!("{}{IN_PROGRESS}", target.display()));
        for existing in [&target, &in_progress] {
            if existing.exists() {
                if !settings.overwrite {
                    return Err(EmberError::Config {
                        key: conf::EVENT_LOG_OVERWRITE.into(),
                        value: "false".into(),
                        reason: format!("Target log file already exists ({})", existing.display()),
                    });
                }
                std::fs::remove_file(existing).map_err(|e| EmberError::io(existing, e))?;
            }
        }
        let file = File::create(&in_progress).map_err(|e| EmberError::io(&in_progress, e))?;
        let buffered = BufWriter::with_capacity(settings.buffer, file);
        let out = if settings.compress {
            Out::Lz4(lz4::Lz4BlockWriter::new(buffered, lz4::BLOCK_SIZE))
        } else {
            Out::Plain(buffered)
        };
        info!("Logging events to {}", in_progress.display());
        let mut w = EventLogWriter {
            out: Some(out),
            in_progress,
            target,
            log_block_updates: settings.log_block_updates,
            line: Vec::new(),
            unflushed: false,
        };
        w.write_line(|line| json::write_event_first(line, &json::log_start()).map(|_| true));
        w.flush();
        Ok(w)
    }

    /// Writes one event's line; false when it is not one Spark logs.
    fn write_line(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<bool>,
    ) -> bool {
        let Some(out) = &mut self.out else {
            return false;
        };
        self.line.clear();
        match encode(&mut self.line) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                error!("Could not write an event to {}: {e}", self.in_progress.display());
                return false;
            }
        }
        self.line.push(b'\n');
        if let Err(e) = out.writer().write_all(&self.line) {
            self.stop_logging(e);
            return false;
        }
        true
    }

    fn flush(&mut self) {
        let Some(out) = &mut self.out else { return };
        if let Err(e) = out.writer().flush() {
            self.stop_logging(e);
        }
        self.unflushed = false;
    }

    fn stop_logging(&mut self, e: std::io::Error) {
        // A full disk must not stop the application: the log stops, the job goes on.
        error!("Stopping the event log {}: {e}", self.in_progress.display());
        self.out = None;
    }

    /// Finishes the log and gives it its final name.
    fn close(&mut self) {
        let Some(out) = self.out.take() else { return };
        let closed = match out {
            Out::Plain(mut w) => w.flush(),
            Out::Lz4(w) => w.finish().and_then(|mut b| b.flush()),
        };
        if let Err(e) = closed.and_then(|_| std::fs::rename(&self.in_progress, &self.target)) {
            error!(
                "Could not finish the event log {}: {e}",
                self.in_progress.display()
            );
        }
    }
}

impl EventSink for EventLogWriter {
    fn on_event(&mut self, event: &ListenerEvent) {
        // As Spark's EventLoggingListener: block updates only when asked; the events that mark
        // progress (jobs, stages, executors, the application) are flushed, so a live log can be
        // read up to them. Spark flushes at each such event; Ember at the end of the batch of
        // events the queue's thread took (at most `LINGER` later), which costs one write for
        // many short jobs instead of three per job.
        let flush = match event {
            ListenerEvent::BlockUpdated(_) if !self.log_block_updates => return,
            ListenerEvent::TaskStart(_)
            | ListenerEvent::TaskGettingResult(_)
            | ListenerEvent::TaskEnd(_)
            | ListenerEvent::StageSubmitted(_)
            | ListenerEvent::BlockUpdated(_) => false,
            _ => true,
        };
        if self.write_line(|line| json::write_event(event, line)) && flush {
            self.unflushed = true;
        }
    }

    fn on_batch_end(&mut self) {
        if self.unflushed {
            self.flush();
        }
    }

    fn on_stop(&mut self) {
        self.close();
    }
}

impl Drop for EventLogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_starts_with_its_event_name() {
        let start = ListenerEvent::ApplicationStart(crate::listener::events::ApplicationStart {
            app_name: "a".into(),
            app_id: "local-1".into(),
            time: 5,
            spark_user: "u".into(),
        });
        let v = json::event_to_json(&start).expect("an application start is logged");
        let mut line = Vec::new();
        json::write_event(&start, &mut line).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.starts_with(r#"{"Event":"SparkListenerApplicationStart","#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        let mut line = Vec::new();
        json::write_event_first(&mut line, &json::log_start()).unwrap();
        assert!(line.starts_with(br#"{"Event":"SparkListenerLogStart","#));
    }
}
