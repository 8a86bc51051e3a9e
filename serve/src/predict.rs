//! `POST /predict`: decodes the body into a batch of images for the
//! batcher, and builds the reply with the top classes and the
//! probabilities of each image.

use std::time::Instant;

use serde::Serialize;

use crate::app::LoadedModel;
use crate::batcher::{Pixels, Rows};
use crate::decode::{self, Batch, Format, Limits};
use crate::http::Reply;
use crate::routes::{Outcome, Prediction};

/// Classes listed per image when the query gives no `top_k`.
const DEFAULT_TOP_K: usize = 1;

/// Options of one request, from its query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictOptions {
    /// Number of classes listed per image, from 1 to [`model::CLASSES`].
    pub top_k: usize,
}

impl PredictOptions {
    /// Parses the query string of `url`, ignoring parameters other than `top_k`.
    ///
    /// # Errors
    /// A 400 reply for a `top_k` that is not an integer from 1 to 10, or
    /// that is given more than once.
    pub fn from_url(url: &str) -> Result<Self, Reply> {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        let mut top_k = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name != "top_k" {
                continue;
            }
            if top_k.is_some() {
                return Err(Reply::error(
                    400,
                    "the query parameter top_k is given more than once: give it once",
                ));
            }
            top_k = Some(parse_top_k(value)?);
        }
        Ok(Self {
            top_k: top_k.unwrap_or(DEFAULT_TOP_K),
        })
    }
}

fn parse_top_k(value: &str) -> Result<usize, Reply> {
    match value.parse::<usize>() {
        Ok(top_k) if (1..=model::CLASSES).contains(&top_k) => Ok(top_k),
        _ => Err(Reply::error(
            400,
            &format!(
                "invalid top_k '{value}': expected an integer from 1 to {}",
                model::CLASSES
            ),
        )),
    }
}

#[derive(Serialize)]
struct ClassScore<'a> {
    class_index: usize,
    class_name: &'a str,
    probability: f32,
}

#[derive(Serialize)]
struct ImagePrediction<'a> {
    top_k: Vec<ClassScore<'a>>,
    probabilities: [f32; model::CLASSES],
}

/// The response body. The last three fields repeat the first image's
/// best class and probabilities, the response of the single-image API.
#[derive(Serialize)]
struct PredictBody<'a> {
    predictions: Vec<ImagePrediction<'a>>,
    count: usize,
    format: &'static str,
    seconds: f64,
    class_index: usize,
    class_name: &'a str,
    probabilities: [f32; model::CLASSES],
}

/// Decodes every image of `body`, sent with `content_type`, and returns
/// them for the batcher with the function that builds the reply.
///
/// The reply is 200 with the predictions, or the status of a
/// [`decode::DecodeError`] for a body that does not decode.
pub fn predict(
    loaded: &LoadedModel,
    content_type: Option<&str>,
    body: &[u8],
    options: PredictOptions,
) -> Outcome {
    let started = Instant::now();
    let batch = match decode::decode_body(content_type, body, &Limits::default()) {
        Ok(batch) => batch,
        Err(error) => return Reply::error(error.status(), error.message()).into(),
    };
    let Batch {
        pixels,
        count,
        format,
    } = batch;
    let class_names = loaded.class_names.clone();
    let respond = move |rows: Rows| {
        if rows.len() != count {
            let message = format!(
                "the network returned {} predictions for {count} images",
                rows.len()
            );
            log::error!("{message}");
            return Reply::error(500, &message);
        }
        let seconds = started.elapsed().as_secs_f64();
        prediction_reply(&class_names, format, &rows, options, seconds)
    };
    Outcome::Predict(Prediction {
        pixels: Pixels::Bytes(pixels),
        respond: Box::new(respond),
    })
}

fn prediction_reply(
    class_names: &[String],
    format: Format,
    rows: &[[f32; model::CLASSES]],
    options: PredictOptions,
    seconds: f64,
) -> Reply {
    let predictions: Vec<ImagePrediction<'_>> = rows
        .iter()
        .map(|probabilities| ImagePrediction {
            top_k: top_classes(class_names, probabilities, options.top_k),
            probabilities: *probabilities,
        })
        .collect();
    let Some((first, best)) = predictions
        .first()
        .and_then(|first| Some((first, first.top_k.first()?)))
    else {
        return Reply::error(500, "the network returned no prediction");
    };
    let (class_index, class_name, probabilities) =
        (best.class_index, best.class_name, first.probabilities);
    Reply::json(
        200,
        &PredictBody {
            count: rows.len(),
            format: format.name(),
            seconds,
            class_index,
            class_name,
            probabilities,
            predictions,
        },
    )
}

/// Returns the `top_k` most probable classes, most probable first. Of two
/// classes with equal probability, the lower class index comes first.
fn top_classes<'a>(
    class_names: &'a [String],
    probabilities: &[f32; model::CLASSES],
    top_k: usize,
) -> Vec<ClassScore<'a>> {
    let mut order: Vec<usize> = (0..model::CLASSES).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    order
        .into_iter()
        .take(top_k.max(1))
        .map(|class_index| ClassScore {
            class_index,
            class_name: class_names
                .get(class_index)
                .map_or("unknown", String::as_str),
            probability: probabilities[class_index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_k_of(url: &str) -> Result<usize, String> {
        PredictOptions::from_url(url)
            .map(|options| options.top_k)
            .map_err(|reply| reply.body)
    }

    #[test]
    fn top_k_defaults_to_one() {
        assert_eq!(top_k_of("/predict"), Ok(1));
        assert_eq!(top_k_of("/predict?"), Ok(1));
        assert_eq!(top_k_of("/predict?other=x"), Ok(1));
    }

    #[test]
    fn top_k_accepts_range() {
        assert_eq!(top_k_of("/predict?top_k=1"), Ok(1));
        assert_eq!(top_k_of("/predict?a=b&top_k=10"), Ok(10));
    }

    #[test]
    fn top_k_rejects_invalid_values() {
        for value in ["0", "11", "-1", "abc", "", "2.5"] {
            let body = top_k_of(&format!("/predict?top_k={value}")).unwrap_err();
            assert!(body.contains(&format!("invalid top_k '{value}'")), "{body}");
            assert!(body.contains("from 1 to 10"), "{body}");
        }
        let body = top_k_of("/predict?top_k=2&top_k=3").unwrap_err();
        assert!(body.contains("more than once"), "{body}");
    }
}
