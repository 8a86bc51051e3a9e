//! The per-class table printed after the final test evaluation.

use std::fmt::Write;

use model::Evaluation;

/// Formats one line per class: its name, accuracy and counts.
pub fn per_class_table(evaluation: &Evaluation, class_names: &[String]) -> String {
    let width = class_names.iter().map(String::len).max().unwrap_or(0);
    let mut table = String::new();
    for (class, count) in evaluation.per_class.iter().enumerate() {
        let name = class_names.get(class).map_or("?", String::as_str);
        let accuracy = 100.0 * count.correct as f64 / count.total.max(1) as f64;
        let _ = writeln!(
            table,
            "  {name:<width$}  {accuracy:6.2}% ({} of {})",
            count.correct, count.total
        );
    }
    table
}
