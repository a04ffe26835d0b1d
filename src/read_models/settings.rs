//! This instance's settings for the read models it refreshes: per-view
//! schedules and timeouts (`PGCQRS_SCHEDULE_<VIEW>`,
//! `PGCQRS_REFRESH_TIMEOUT_MS_<VIEW>`) and the full-refresh switch, parsed
//! by the configuration and applied here to the models declared in the
//! database.

use std::collections::BTreeMap;

use super::{ReadModel, ScheduledModel};

pub const SCHEDULE_PREFIX: &str = "PGCQRS_SCHEDULE_";
pub const TIMEOUT_PREFIX: &str = "PGCQRS_REFRESH_TIMEOUT_MS_";

/// A setting that names no declared read model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownModel {
    #[error("{var} names no read model; known: {known}")]
    View { var: String, known: String },
    #[error("PGCQRS_FULL_REFRESH names {name:?}, neither `all` nor a read model; known: {known}")]
    FullRefresh { name: String, known: String },
}

/// Per-view settings of this instance, keyed by the view's name in upper
/// case (`ORDER_SUMMARY`), each with the variable that set it.
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    pub schedules: BTreeMap<String, (String, String)>,
    pub timeouts: BTreeMap<String, (String, u64)>,
    /// `all` or read-model names.
    pub full_refresh: Vec<String>,
    /// Every model on this schedule unless set per view (tests and tools).
    pub schedule_all: Option<String>,
}

impl ModelConfig {
    /// Give `view` this timeout here (tests and tools).
    pub fn set_timeout(&mut self, view: &str, ms: u64) {
        let key = view.to_ascii_uppercase();
        self.timeouts
            .insert(key.clone(), (format!("{TIMEOUT_PREFIX}{key}"), ms));
    }

    /// The catalog's models with this instance's settings. `strict`: a
    /// setting naming no model is an error (at start); otherwise it is
    /// ignored (a model dropped while running).
    pub fn apply(
        &self,
        catalog: Vec<ReadModel>,
        strict: bool,
    ) -> Result<Vec<ScheduledModel>, UnknownModel> {
        let known = || {
            catalog
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if strict {
            let names = self.schedules.iter().map(|(k, (var, _))| (k, var));
            let timeouts = self.timeouts.iter().map(|(k, (var, _))| (k, var));
            if let Some((_, var)) = names
                .chain(timeouts)
                .find(|(view, _)| !catalog.iter().any(|m| view_var_suffix(m) == **view))
            {
                return Err(UnknownModel::View {
                    var: var.clone(),
                    known: known(),
                });
            }
            if let Some(name) = self
                .full_refresh
                .iter()
                .find(|n| *n != "all" && !catalog.iter().any(|m| m.name == **n))
            {
                return Err(UnknownModel::FullRefresh {
                    name: name.clone(),
                    known: known(),
                });
            }
        }
        Ok(catalog
            .into_iter()
            .map(|model| {
                let suffix = view_var_suffix(&model);
                ScheduledModel {
                    schedule: self.schedules.get(&suffix).map_or_else(
                        || {
                            self.schedule_all
                                .clone()
                                .unwrap_or_else(|| model.default_schedule().to_owned())
                        },
                        |(_, s)| s.clone(),
                    ),
                    timeout_ms: self
                        .timeouts
                        .get(&suffix)
                        .map_or(model.timeout_ms, |(_, t)| *t),
                    full_refresh: self
                        .full_refresh
                        .iter()
                        .any(|n| n == "all" || *n == model.name),
                    model: std::sync::Arc::new(model),
                }
            })
            .collect())
    }
}

/// `ORDER_SUMMARY` for `order_summary`: how per-view variables name a view.
fn view_var_suffix(model: &ReadModel) -> String {
    model.name.to_ascii_uppercase()
}
