//! Aggregators: how values of one key are combined in a shuffle (Spark's `Aggregator`).

/// Combines the values of one key: `create_combiner` on the first value, `merge_value` for every
/// further value in the same task, `merge_combiners` for combiners from different map tasks.
///
/// Implementations are small structs holding the user's zero-sized closures, so a shuffle's hot
/// loop is monomorphized per job and the calls inline: there is no dynamic dispatch per record.
pub trait Aggregator<K, V, C>:
    Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static
{
    /// Whether map tasks combine before writing (false for `group_by_key`, where it saves nothing).
    const MAP_SIDE_COMBINE: bool;
    /// The combiner for the first value of a key.
    fn create_combiner(&self, value: V) -> C;
    /// Folds one more value into a combiner.
    fn merge_value(&self, combiner: &mut C, value: V);
    /// Folds another combiner of the same key into this one.
    fn merge_combiners(&self, combiner: &mut C, other: C);
}
