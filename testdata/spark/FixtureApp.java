// Spark applications whose event logs and REST API responses are Ember's ground truth for the
// listener bus, the /api/v1 monitoring API and Spark-format event logs (see README.md here).
// Run by make-fixtures.sh; Spark's Java RDD API only, no Python.
//
//   java <JVM flags> -cp "$JARS/*:classes" FixtureApp <wordcount|failed-job|killed-executor>
//
// System properties: fixture.ctl (control dir, required), fixture.eventLogDir (required),
// fixture.input (wordcount input file), fixture.classes (our classes, for local-cluster executors),
// fixture.rolling (false), fixture.timeoutSec (120).
//
// Control protocol with the capturing script (files in fixture.ctl; the script only creates
// files, the program only waits for them, each wait bounded by fixture.timeoutSec):
//   program writes  ui        the live UI's base URL, then appid (the application id)
//   wordcount only: program writes `running` when a job's tasks are blocked on `release`;
//                   the script captures the REST API, then creates `release`
//   program writes  done      when every job is over (the cached RDD is still cached)
//   script creates  captured  after capturing; the program then unpersists and stops.
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaFutureAction;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

public class FixtureApp {
    static Path ctl;
    static long timeoutMs;

    static void log(String s) { System.out.println("FIXTURE " + s); System.out.flush(); }

    static void write(String name, String content) throws IOException {
        Path tmp = ctl.resolve(name + ".tmp");
        Files.write(tmp, content.getBytes(StandardCharsets.UTF_8));
        Files.move(tmp, ctl.resolve(name));
    }

    /** Waits for ctl/name; throws after the timeout (never hangs). Used by the driver and by tasks. */
    static void await(Path ctlDir, String name, long timeout) throws Exception {
        long deadline = System.currentTimeMillis() + timeout;
        while (!Files.exists(ctlDir.resolve(name))) {
            if (System.currentTimeMillis() > deadline)
                throw new IllegalStateException("timed out waiting for " + ctlDir.resolve(name));
            Thread.sleep(50);
        }
    }

    public static void main(String[] args) throws Exception {
        String app = args.length > 0 ? args[0] : "";
        ctl = Paths.get(System.getProperty("fixture.ctl"));
        timeoutMs = 1000L * Long.parseLong(System.getProperty("fixture.timeoutSec", "120"));
        Files.createDirectories(ctl);
        String master;
        switch (app) {
            case "wordcount": master = "local[2]"; break;
            case "failed-job": master = "local[2,4]"; break;   // 4 attempts per task
            case "killed-executor": master = "local-cluster[2,1,1024]"; break;
            default: throw new IllegalArgumentException("usage: FixtureApp wordcount|failed-job|killed-executor");
        }
        SparkConf conf = new SparkConf().setMaster(master).setAppName(app)
                .set("spark.eventLog.enabled", "true")
                .set("spark.eventLog.dir", System.getProperty("fixture.eventLogDir"))
                .set("spark.eventLog.compress", "false")
                // Spark 4 writes rolling event logs (a directory eventlog_v2_<appId>/) by default;
                // the fixtures are the single-file form (<appId>, <appId>.inprogress while running).
                .set("spark.eventLog.rolling.enabled", System.getProperty("fixture.rolling", "false"))
                .set("spark.ui.enabled", "true")
                .set("spark.ui.port", "4040")
                .set("spark.ui.showConsoleProgress", "false")
                .set("spark.local.dir", System.getProperty("java.io.tmpdir"));
        if (app.equals("killed-executor")) {
            // Executors are separate JVMs launched from SPARK_HOME: they need our classes.
            // Keep the executors' scratch (native libraries, block manager dirs) out of /tmp too:
            // a SIGKILLed JVM cannot delete its own.
            conf.set("spark.executor.extraClassPath", System.getProperty("fixture.classes"))
                .set("spark.executor.extraJavaOptions", "-XX:-UsePerfData -Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir"));
        }
        JavaSparkContext sc = new JavaSparkContext(conf);
        sc.setLogLevel("WARN");
        write("ui", sc.sc().uiWebUrl().get());
        write("appid", sc.sc().applicationId());
        log("app " + app + " id " + sc.sc().applicationId() + " ui " + sc.sc().uiWebUrl().get() + " Spark " + sc.version());

        JavaPairRDD<?, ?> cached = null;
        switch (app) {
            case "wordcount": cached = wordcount(sc); break;
            case "failed-job": failedJob(sc); break;
            case "killed-executor": killedExecutor(sc); break;
        }
        write("done", sc.sc().applicationId());
        log("jobs done; waiting for " + ctl.resolve("captured"));
        await(ctl, "captured", timeoutMs);
        if (cached != null) cached.unpersist(true);   // SparkListenerUnpersistRDD
        sc.stop();
        log("stopped");
    }

    // text file -> flatMap split -> (w,1) -> reduceByKey; job 0 count (caches), job 1 collect,
    // job 2 take on the cached RDD, job 3 a job whose tasks block until the script releases them.
    static JavaPairRDD<?, ?> wordcount(JavaSparkContext sc) throws Exception {
        String input = System.getProperty("fixture.input");
        JavaRDD<String> lines = sc.textFile(input, 4);
        JavaPairRDD<String, Integer> counts = lines
                .flatMap(l -> Arrays.asList(l.trim().split("\\s+")).iterator())
                .filter(w -> !w.isEmpty())
                .mapToPair(w -> new Tuple2<>(w, 1))
                .reduceByKey((a, b) -> a + b, 4)
                .setName("wordcounts");
        counts.persist(StorageLevel.MEMORY_ONLY());
        long distinct = counts.count();
        List<Tuple2<String, Integer>> all = counts.collect();
        List<Tuple2<String, Integer>> few = counts.take(3);
        long total = 0; for (Tuple2<String, Integer> t : all) total += t._2();
        log("wordcount: " + distinct + " distinct words, " + total + " words, take(3)=" + few);

        // The blocking job: 4 tasks on 2 cores, so 2 run (blocked) and 2 wait while the script captures.
        final String ctlDir = ctl.toString();
        final long t = timeoutMs;
        Thread runner = new Thread(() -> {
            long n = sc.parallelize(Arrays.asList(1, 2, 3, 4, 5, 6, 7, 8), 4).setName("blocking")
                    .map(x -> { await(Paths.get(ctlDir), "release", t); return x; }).count();
            log("blocking job count=" + n);
        });
        runner.start();
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {   // wait until 2 tasks of the blocking job are running
            int[] active = sc.statusTracker().getActiveStageIds();
            if (active.length > 0 && sc.statusTracker().getStageInfo(active[0]) != null
                    && sc.statusTracker().getStageInfo(active[0]).numActiveTasks() >= 2) break;
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("blocking job never ran");
            Thread.sleep(50);
        }
        Thread.sleep(300);   // let the live UI's listener see the task starts too
        write("running", "");
        log("blocking job running; waiting for " + ctl.resolve("release"));
        runner.join(timeoutMs + 10000);
        return counts;
    }

    // Job 0: partition 1 throws on every attempt -> 4 attempts -> the job fails.
    // Job 1: a successful job afterwards.
    static void failedJob(JavaSparkContext sc) {
        List<Integer> xs = new ArrayList<>(); for (int i = 0; i < 16; i++) xs.add(i);
        try {
            long n = sc.parallelize(xs, 4).setName("doomed").mapPartitionsWithIndex((Integer i, Iterator<Integer> it) -> {
                if (i == 1) throw new IllegalStateException("fixture: partition 1 always fails");
                List<Integer> out = new ArrayList<>(); it.forEachRemaining(out::add); return out.iterator();
            }, false).count();
            throw new IllegalStateException("the failing job succeeded (" + n + ")");
        } catch (Exception e) {
            if (!(e instanceof SparkException)) throw e;
            log("job 0 failed as intended: " + e.getMessage().split("\n")[0]);
        }
        long n = sc.parallelize(xs, 4).map(x -> x * 2).filter(x -> x % 3 == 0).count();
        log("job 1 count=" + n);
    }

    // local-cluster[2,1,1024]: job 0 warms up; job 1 is a shuffle job whose map tasks take ~1.5 s
    // each; once executor 1 has finished one map task and is running another, the driver SIGKILLs
    // executor 1's JVM. The
    // running task fails (ExecutorLostFailure), the finished one's shuffle output is lost
    // (Resubmitted), both rerun on executor 0 (or the replacement executor) and the job succeeds.
    static void killedExecutor(JavaSparkContext sc) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (sc.statusTracker().getExecutorInfos().length < 3) {   // driver + 2 executors
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("executors never registered");
            Thread.sleep(100);
        }
        List<Integer> xs = new ArrayList<>(); for (int i = 0; i < 40; i++) xs.add(i);
        long n0 = sc.parallelize(xs, 4).count();   // job 0: warm-up on both executors
        log("job 0 count=" + n0);

        // Task state per executor of stage 1, from the listener bus (events arrive in any order
        // across executors, so the decision is taken by polling, not inside the listener).
        final Map<String, Integer> successes = new ConcurrentHashMap<>();
        final Map<Long, String> running = new ConcurrentHashMap<>();
        sc.sc().addSparkListener(new SparkListener() {
            @Override public void onTaskStart(SparkListenerTaskStart e) {
                if (e.stageId() == 1) running.put(e.taskInfo().taskId(), e.taskInfo().executorId());
            }
            @Override public void onTaskEnd(SparkListenerTaskEnd e) {
                if (e.stageId() != 1) return;
                running.remove(e.taskInfo().taskId());
                if ("Success".equals(String.valueOf(e.reason())))
                    successes.merge(e.taskInfo().executorId(), 1, Integer::sum);
            }
        });
        JavaFutureAction<List<Tuple2<Integer, Integer>>> job = sc.parallelize(xs, 4).setName("slow-map")
                .mapToPair(x -> { if (x % 10 == 0) Thread.sleep(1500); return new Tuple2<>(x % 5, x); })
                .reduceByKey((a, b) -> a + b, 2).collectAsync();   // job 1: stages 1 (map) and 2 (result)
        boolean killed = false;
        deadline = System.currentTimeMillis() + timeoutMs;
        while (!job.isDone() && !killed) {
            // executor 1 has finished a map task (its shuffle output will be lost) and is running another
            if (successes.getOrDefault("1", 0) >= 1 && running.containsValue("1")) {
                Thread.sleep(300);
                killed = kill("1");
            }
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("job 1 never reached the kill point");
            Thread.sleep(20);
        }
        List<Tuple2<Integer, Integer>> sums = job.get();
        log("job 1 sums=" + sums + " killed=" + killed);
        if (!killed) throw new IllegalStateException("executor 1 was never killed");
        // job 2: after the loss, on what is left (executor 0 and the replacement executor, if up)
        long n2 = sc.parallelize(xs, 4).map(x -> x + 1).count();
        log("job 2 count=" + n2 + ", executors now " + sc.statusTracker().getExecutorInfos().length);
    }

    /** SIGKILLs the executor JVM with the given executor id (a child process of this driver). */
    static boolean kill(String execId) {
        Optional<ProcessHandle> p = ProcessHandle.current().descendants().filter(h -> {
            String[] a = h.info().arguments().orElse(new String[0]);
            for (int i = 0; i + 1 < a.length; i++) if (a[i].equals("--executor-id") && a[i + 1].equals(execId)) return true;
            return false;
        }).findFirst();
        if (!p.isPresent()) { log("no process for executor " + execId); return false; }
        log("SIGKILL executor " + execId + " pid " + p.get().pid());
        return p.get().destroyForcibly();
    }
}
