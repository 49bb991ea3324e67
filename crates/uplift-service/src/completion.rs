//! The completion notice: once step 3 has switched production over, the admins who
//! started steps 1 and 3 and every maker with an item hear what became of it. Owed by
//! the upgrade's log (each recipient once), so a server stopped before sending sends
//! it when it starts again.

use uplift_upgrade::events::MailPurpose;
use uplift_upgrade::items::{ItemKind, ItemState};
use uplift_upgrade::state::{Status, UpgradeState};

use crate::Services;
use crate::error::Result;
use crate::step2::{mailed, plural};

impl Services {
    /// Sends the completion notices still owed for `env`'s latest upgrade.
    pub(crate) async fn notify_completed(&self, env: &str) -> Result<()> {
        let Some((_, state)) = self.upgrades.latest(env).await? else {
            return Ok(());
        };
        if state.status != Status::Completed {
            return Ok(());
        }
        let Some(mailer) = self.flows.mailer() else {
            return Ok(());
        };
        let items = state.items.as_deref().unwrap_or_default();
        let mut to: Vec<(String, Vec<&ItemState>)> = Vec::new();
        let admins = [
            Some(state.actor.clone()),
            state.step3.as_ref().map(|t| t.by.clone()),
        ];
        for admin in admins.into_iter().flatten() {
            if !to.iter().any(|(t, _)| t.eq_ignore_ascii_case(&admin)) {
                to.push((admin.to_lowercase(), Vec::new()));
            }
        }
        for (maker, theirs) in self.makers(items).await? {
            match to.iter_mut().find(|(t, _)| t.eq_ignore_ascii_case(&maker)) {
                Some((_, list)) => list.extend(theirs),
                None => to.push((maker, theirs)),
            }
        }
        for (who, theirs) in to {
            if mailed(&state, &who, MailPurpose::Completed) {
                continue;
            }
            let (subject, body) = self.completion_notice(env, &state, &theirs);
            match mailer
                .send(std::slice::from_ref(&who), &subject, &body)
                .await
            {
                Ok(id) => {
                    let ids = theirs.iter().map(|i| i.item.id.clone()).collect();
                    self.upgrades
                        .record_completion_mail(env, &who, ids, id)
                        .await?;
                }
                Err(e) => tracing::warn!(to = %who, error = %e, "completion notice not sent"),
            }
        }
        Ok(())
    }

    /// The message: the switch's figures, then what became of the recipient's items.
    fn completion_notice(
        &self,
        env: &str,
        state: &UpgradeState,
        theirs: &[&ItemState],
    ) -> (String, String) {
        let subject = format!("Upgrade of '{env}' is complete");
        let mut body = format!(
            "The upgrade of '{env}' is complete: production is on the new schema, and its apps and flows are the upgraded copies.\n"
        );
        if let Some(t) = &state.step3 {
            let pauses: Vec<String> = t
                .pause
                .attempts
                .iter()
                .map(|a| format!("{} ms", a.ms))
                .collect();
            body.push_str(&format!(
                "\nWrite pause: {} ({} write{} held, the longest for {} ms; budget {} ms).\n",
                pauses.join(", then "),
                t.pause.writes_held,
                plural(t.pause.writes_held as usize),
                t.pause.max_write_wait_ms,
                t.options.pause_budget_ms
            ));
        }
        if !theirs.is_empty() {
            body.push_str("\nYour items:\n");
        }
        for i in theirs {
            let line = match (i.item.kind, i.excluded.is_some()) {
                (_, true) => format!("- '{}' was excluded: it stays as it was", i.item.name),
                (ItemKind::App, false) => format!(
                    "- app '{}': its upgraded copy is the published version",
                    i.item.name
                ),
                (ItemKind::Flow, false) => format!(
                    "- flow '{}': the upgraded flow replaces it; the original is archived with its runs",
                    i.item.name
                ),
            };
            body.push_str(&line);
            body.push('\n');
        }
        body.push_str(&format!(
            "\nThe upgrade: {}\n",
            self.address(&format!("/api/environments/{env}/upgrade"))
        ));
        (subject, body)
    }
}
