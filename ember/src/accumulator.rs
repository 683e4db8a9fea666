//! Accumulators (Spark's `AccumulatorV2`): variables that tasks only add to and the driver reads.
//!
//! A task never touches the driver's value. The first `add` inside a task creates a zero copy in
//! the task's [`TaskContext`]; when the task ends, its copies travel to the driver with the result
//! (serialized, as every result does in cluster mode) and the DAG scheduler merges them into the
//! driver's value **only when the attempt is the first successful one for its partition in the
//! current stage attempt**. So, as Spark guarantees for actions, a retried, resubmitted or
//! speculative attempt never applies its updates twice, and failed attempts apply nothing.
//! (Inside transformations of a stage that is recomputed — after an executor is lost — updates
//! are applied again by the new stage attempt, as in Spark.)
//!
//! Accumulators are captured like any other value, with [`func!`](crate::func):
//!
//! ```
//! use ember::prelude::*;
//! let ctx = Context::new(EmberConf::new().set_master("local[2]")).unwrap();
//! let evens = ctx.long_accumulator("evens");
//! ctx.parallelize((0..100u64).collect::<Vec<_>>(), 4)
//!     .foreach(func!(|x| if x % 2 == 0 { evens.add(1) }))
//!     .unwrap();
//! assert_eq!(evens.value(), 50);
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{EmberError, Result};
use crate::task::{StageId, TaskAccumulator, TaskContext};

/// The behaviour of an accumulator's value (Spark's `AccumulatorV2` minus the bookkeeping Ember
/// does itself). Implement it to define your own accumulator; `zero` must return an empty value
/// that `merge` treats as neutral.
pub trait AccumulatorValue:
    Clone + Debug + Send + Sync + Serialize + DeserializeOwned + 'static
{
    /// What tasks add.
    type In;
    /// What the driver reads.
    type Out;
    /// An empty value of the same kind (Spark's `copyAndReset`).
    fn zero(&self) -> Self;
    /// Whether this value is empty (tasks that added nothing send nothing).
    fn is_zero(&self) -> bool;
    /// Adds one input.
    fn add(&mut self, v: Self::In);
    /// Merges another partial value into this one.
    fn merge(&mut self, other: &Self);
    /// Empties this value.
    fn reset(&mut self) {
        *self = self.zero();
    }
    /// The current value, as the driver reads it.
    fn value(&self) -> Self::Out;
}

/// Sum, count (and so average) of `i64` inputs (Spark's `LongAccumulator`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongSum {
    /// The sum of the inputs.
    pub sum: i64,
    /// How many inputs were added.
    pub count: u64,
}

impl AccumulatorValue for LongSum {
    type In = i64;
    type Out = i64;
    fn zero(&self) -> Self {
        LongSum::default()
    }
    fn is_zero(&self) -> bool {
        self.count == 0 && self.sum == 0
    }
    fn add(&mut self, v: i64) {
        self.sum = self.sum.wrapping_add(v);
        self.count += 1;
    }
    fn merge(&mut self, other: &Self) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.count += other.count;
    }
    fn value(&self) -> i64 {
        self.sum
    }
}

/// Sum and count of `f64` inputs (Spark's `DoubleAccumulator`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DoubleSum {
    /// The sum of the inputs.
    pub sum: f64,
    /// How many inputs were added.
    pub count: u64,
}

impl AccumulatorValue for DoubleSum {
    type In = f64;
    type Out = f64;
    fn zero(&self) -> Self {
        DoubleSum::default()
    }
    fn is_zero(&self) -> bool {
        self.count == 0 && self.sum == 0.0
    }
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
    }
    fn merge(&mut self, other: &Self) {
        self.sum += other.sum;
        self.count += other.count;
    }
    fn value(&self) -> f64 {
        self.sum
    }
}

/// Every input, in no particular order across tasks (Spark's `CollectionAccumulator`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "T: Serialize + DeserializeOwned")]
pub struct Collection<T>(pub Vec<T>);

impl<T> Default for Collection<T> {
    fn default() -> Self {
        Collection(Vec::new())
    }
}

impl<T: Clone + Debug + Send + Sync + Serialize + DeserializeOwned + 'static> AccumulatorValue
    for Collection<T>
{
    type In = T;
    type Out = Vec<T>;
    fn zero(&self) -> Self {
        Collection(Vec::new())
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
    fn add(&mut self, v: T) {
        self.0.push(v);
    }
    fn merge(&mut self, other: &Self) {
        self.0.extend(other.0.iter().cloned());
    }
    fn value(&self) -> Vec<T> {
        self.0.clone()
    }
}

/// The driver's side of one accumulator: its value and name.
struct DriverCell<A> {
    value: Mutex<A>,
    name: Option<String>,
}

/// A handle on an accumulator. Clone it into pipelines (with the `_with` forms); `add` inside a
/// task adds to the task's copy, `value` on the driver reads the merged total.
pub struct Accumulator<A: AccumulatorValue> {
    id: u64,
    name: Option<String>,
    zero: A,
    /// Present in the driver's handles; a handle decoded in a task has none.
    driver: Option<Arc<DriverCell<A>>>,
}

impl<A: AccumulatorValue> Clone for Accumulator<A> {
    fn clone(&self) -> Self {
        Accumulator {
            id: self.id,
            name: self.name.clone(),
            zero: self.zero.clone(),
            driver: self.driver.clone(),
        }
    }
}

impl<A: AccumulatorValue> Debug for Accumulator<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accumulator")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// What crosses the wire for a handle: never the driver's value.
#[derive(Serialize, Deserialize)]
struct WireHandle<A> {
    id: u64,
    name: Option<String>,
    zero: A,
}

impl<A: AccumulatorValue> Serialize for Accumulator<A> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireHandle {
            id: self.id,
            name: self.name.clone(),
            zero: self.zero.clone(),
        }
        .serialize(s)
    }
}

impl<'de, A: AccumulatorValue> Deserialize<'de> for Accumulator<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireHandle::<A>::deserialize(d)?;
        Ok(Accumulator {
            id: w.id,
            name: w.name,
            zero: w.zero,
            driver: None,
        })
    }
}

impl<A: AccumulatorValue> Accumulator<A> {
    /// The accumulator's id, unique within the application.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name given at creation, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Adds `v`: to the running task's copy inside a task, to the driver's value outside.
    pub fn add(&self, v: A::In) {
        let v = TaskContext::with_current(|ctx| match ctx {
            Some(ctx) => {
                ctx.with_accumulator(
                    self.id,
                    || Box::new(TaskCopy(self.zero.zero())),
                    |slot| {
                        if let Some(copy) = slot.as_any_mut().downcast_mut::<TaskCopy<A>>() {
                            copy.0.add(v);
                        }
                    },
                );
                None
            }
            None => Some(v),
        });
        // Outside a task (on the driver) the value goes straight into the driver's total.
        if let (Some(v), Some(d)) = (v, &self.driver) {
            d.value.lock().add(v);
        }
    }

    /// The merged value of every successful task so far (on the driver). In a task, where the
    /// total is not known, Spark forbids this; here it is the empty value.
    pub fn value(&self) -> A::Out {
        match &self.driver {
            Some(d) => d.value.lock().value(),
            None => self.zero.value(),
        }
    }

    /// The driver's raw value (for a user accumulator's extra fields, such as `count`).
    pub fn raw_value(&self) -> Option<A> {
        self.driver.as_ref().map(|d| d.value.lock().clone())
    }

    /// Empties the driver's value.
    pub fn reset(&self) {
        if let Some(d) = &self.driver {
            d.value.lock().reset();
        }
    }
}

impl Accumulator<LongSum> {
    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.raw_value().map_or(0, |v| v.count)
    }

    /// Average of the values added (`NaN` when none was).
    pub fn avg(&self) -> f64 {
        self.raw_value()
            .map_or(f64::NAN, |v| v.sum as f64 / v.count as f64)
    }
}

struct TaskCopy<A>(A);

impl<A: AccumulatorValue> TaskAccumulator for TaskCopy<A> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
    fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(&self.0).map_err(|e| EmberError::ser_context("accumulator update", e))
    }
}

pub use ember_common::AccumulatorUpdate;

/// Serializes a task's non-empty accumulator copies.
pub(crate) fn collect_updates(
    copies: Vec<(u64, Box<dyn TaskAccumulator>)>,
) -> Result<Vec<AccumulatorUpdate>> {
    copies
        .into_iter()
        .filter(|(_, c)| !c.is_zero())
        .map(|(id, c)| {
            Ok(AccumulatorUpdate {
                id,
                bytes: c.to_bytes()?,
            })
        })
        .collect()
}

/// The driver's view of one accumulator, type-erased.
trait DriverAccumulator: Send + Sync {
    fn name(&self) -> Option<&str>;
    /// The value's type, named when its `merge` fails (Spark logs the class name).
    fn type_name(&self) -> &'static str;
    /// Merges a task's update; returns the update decoded, for the stage's running total.
    fn merge_update(
        &self,
        bytes: &[u8],
        stage_total: &mut Option<Box<dyn Any + Send>>,
    ) -> Result<()>;
    /// The stage total as text.
    fn describe(&self, stage_total: &(dyn Any + Send)) -> String;
}

impl<A: AccumulatorValue> DriverAccumulator for DriverCell<A> {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<A>()
    }

    fn merge_update(
        &self,
        bytes: &[u8],
        stage_total: &mut Option<Box<dyn Any + Send>>,
    ) -> Result<()> {
        let update: A = postcard::from_bytes(bytes)
            .map_err(|e| EmberError::ser_context("accumulator update", e))?;
        self.value.lock().merge(&update);
        match stage_total.as_mut().and_then(|t| t.downcast_mut::<A>()) {
            Some(total) => total.merge(&update),
            None => *stage_total = Some(Box::new(update)),
        }
        Ok(())
    }

    fn describe(&self, stage_total: &(dyn Any + Send)) -> String {
        match stage_total.downcast_ref::<A>() {
            Some(a) => format!("{a:?}"),
            None => String::new(),
        }
    }
}

/// A named accumulator's total over one stage's successful tasks (Spark's `AccumulableInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct AccumulableInfo {
    /// The stage whose tasks made the updates.
    pub stage_id: StageId,
    /// The accumulator's id, unique in the application.
    pub accumulator_id: u64,
    /// The name it was created with.
    pub name: String,
    /// The merged updates of the stage's tasks, formatted with `Debug`.
    pub value: String,
}

/// Every accumulator of the application, by id (Spark's `AccumulatorContext`). Holds the driver
/// values weakly: an accumulator whose handles are all dropped is forgotten.
#[derive(Default)]
pub struct AccumulatorRegistry {
    next_id: std::sync::atomic::AtomicU64,
    state: Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    live: FxHashMap<u64, Weak<dyn DriverAccumulator>>,
    /// Stage totals of named accumulators.
    stage_totals: BTreeMap<(StageId, u64), Box<dyn Any + Send>>,
}

impl AccumulatorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new accumulator starting at `initial`.
    pub fn register<A: AccumulatorValue>(
        &self,
        initial: A,
        name: Option<String>,
    ) -> Accumulator<A> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let zero = initial.zero();
        let cell = Arc::new(DriverCell {
            value: Mutex::new(initial),
            name: name.clone(),
        });
        let erased: Arc<dyn DriverAccumulator> = cell.clone();
        self.state.lock().live.insert(id, Arc::downgrade(&erased));
        Accumulator {
            id,
            name,
            zero,
            driver: Some(cell),
        }
    }

    /// Applies a successful task's updates (called once per partition by the DAG scheduler, on
    /// the scheduler's thread). An update that cannot be decoded, or whose user-defined `merge`
    /// panics, is logged and skipped, as Spark's `updateAccumulators` does: it must fail
    /// neither the job nor the scheduler, and the other accumulators' updates still apply.
    pub fn apply(&self, stage_id: StageId, partition: usize, updates: &[AccumulatorUpdate]) {
        if updates.is_empty() {
            return;
        }
        let mut st = self.state.lock();
        for u in updates {
            let Some(acc) = st.live.get(&u.id).and_then(Weak::upgrade) else {
                continue;
            };
            let mut total = if acc.name().is_some() {
                st.stage_totals.remove(&(stage_id, u.id))
            } else {
                None
            };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                acc.merge_update(&u.bytes, &mut total)
            })) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("dropping an update of accumulator {}: {e}", u.id),
                Err(payload) => tracing::error!(
                    "Failed to update accumulator {} ({}) for task {partition}: {}",
                    u.id,
                    acc.type_name(),
                    crate::util::panic_payload_message(payload.as_ref())
                ),
            }
            if acc.name().is_some() {
                if let Some(t) = total {
                    st.stage_totals.insert((stage_id, u.id), t);
                }
            }
        }
        st.live.retain(|_, w| w.strong_count() > 0);
    }

    /// Named accumulators' totals per stage, in stage order.
    pub fn accumulables(&self) -> Vec<AccumulableInfo> {
        let st = self.state.lock();
        st.stage_totals
            .iter()
            .filter_map(|((stage_id, id), total)| {
                let acc = st.live.get(id)?.upgrade()?;
                Some(AccumulableInfo {
                    stage_id: *stage_id,
                    accumulator_id: *id,
                    name: acc.name()?.to_string(),
                    value: acc.describe(total.as_ref()),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update_of<A: AccumulatorValue>(acc: &Accumulator<A>, v: A) -> AccumulatorUpdate {
        AccumulatorUpdate {
            id: acc.id(),
            bytes: postcard::to_allocvec(&v).unwrap(),
        }
    }

    #[test]
    fn driver_side_add_and_task_updates_merge() {
        let reg = AccumulatorRegistry::new();
        let acc = reg.register(LongSum::default(), Some("n".into()));
        acc.add(5);
        reg.apply(0, 0, &[update_of(&acc, LongSum { sum: 3, count: 2 })]);
        reg.apply(1, 0, &[update_of(&acc, LongSum { sum: 4, count: 1 })]);
        assert_eq!(acc.value(), 12);
        assert_eq!(acc.count(), 4);
        let infos = reg.accumulables();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].stage_id, 0);
        assert_eq!(infos[0].name, "n");
        assert!(infos[0].value.contains("sum: 3"), "{}", infos[0].value);
    }

    #[test]
    fn decoded_handles_carry_no_value_and_dropped_accumulators_are_forgotten() {
        let reg = AccumulatorRegistry::new();
        let acc = reg.register(Collection::<String>::default(), None);
        let bytes = postcard::to_allocvec(&acc).unwrap();
        let decoded: Accumulator<Collection<String>> = postcard::from_bytes(&bytes).unwrap();
        assert!(decoded.raw_value().is_none());
        assert_eq!(decoded.id(), acc.id());
        let u = update_of(&acc, Collection(vec!["a".to_string()]));
        drop(acc);
        reg.apply(0, 0, &[u]);
        assert!(reg.state.lock().live.is_empty());
    }

    #[test]
    fn garbage_updates_are_skipped() {
        let reg = AccumulatorRegistry::new();
        let acc = reg.register(DoubleSum::default(), Some("d".into()));
        reg.apply(
            0,
            0,
            &[AccumulatorUpdate {
                id: acc.id(),
                bytes: vec![0xff; 3],
            }],
        );
        assert_eq!(acc.value(), 0.0);
    }

    #[test]
    fn user_defined_accumulator() {
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        struct Max(Option<u32>);
        impl AccumulatorValue for Max {
            type In = u32;
            type Out = Option<u32>;
            fn zero(&self) -> Self {
                Max(None)
            }
            fn is_zero(&self) -> bool {
                self.0.is_none()
            }
            fn add(&mut self, v: u32) {
                self.0 = Some(self.0.map_or(v, |m| m.max(v)));
            }
            fn merge(&mut self, o: &Self) {
                if let Some(v) = o.0 {
                    self.add(v);
                }
            }
            fn value(&self) -> Option<u32> {
                self.0
            }
        }
        let reg = AccumulatorRegistry::new();
        let acc = reg.register(Max::default(), None);
        reg.apply(
            0,
            0,
            &[update_of(&acc, Max(Some(7))), update_of(&acc, Max(Some(3)))],
        );
        assert_eq!(acc.value(), Some(7));
        acc.reset();
        assert_eq!(acc.value(), None);
    }
}
