//! Step 2's background work: the verifications owed (every item's first when step 1
//! ends, those asked for in bulk, one cut short by a stop) and the notices — each
//! maker's list of items once their first verification is done, the admin's message
//! once every item is verified or excluded. All of it is owed by the upgrade's log, so
//! a server that stops in the middle does the rest when it starts again.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::TryStreamExt;

use uplift_api as api;
use uplift_model::security::UserStatus;
use uplift_upgrade::events::MailPurpose;
use uplift_upgrade::items::{ItemState, ItemStatus};
use uplift_upgrade::state::{Status, UpgradeState};

use crate::auth::Actor;
use crate::error::Result;
use crate::{Services, policy};

/// How often the worker looks for owed work when nothing wakes it.
const STEP2_POLL_MS: u64 = 5_000;

/// How many items the worker verifies at once. Each verification mostly waits on the
/// databases (view queries, dry runs, control-plane writes), so two overlap on two
/// cores; the log's appends stay one at a time.
const STEP2_VERIFY_PARALLEL: usize = 2;

impl Services {
    /// Starts the worker that does step 2's owed work, beginning with what the last
    /// stop left.
    pub fn start_step2_worker(&self) {
        let me = self.clone();
        let work = self.upgrades.step2_work();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.step2_round().await {
                    tracing::warn!(error = %e, "step 2 round failed");
                }
                let poll = Duration::from_millis(STEP2_POLL_MS);
                let _ = tokio::time::timeout(poll, work.notified()).await;
            }
        });
    }

    /// Pauses before each verification the worker does (for tests that stop the
    /// server in the middle).
    pub fn set_verify_pause_ms(&self, ms: u64) {
        self.verify_pause_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    async fn step2_round(&self) -> Result<()> {
        for env in self.store.control().list_envs().await? {
            if let Err(e) = self.step2_env(&env.name).await {
                tracing::warn!(env = %env.name, error = %e, "step 2 work of an environment failed");
            }
            if let Err(e) = self.notify_completed(&env.name).await {
                tracing::warn!(env = %env.name, error = %e, "completion notices not sent");
            }
            if let Err(e) = self.upgrades.sweep(&env.name).await {
                tracing::warn!(env = %env.name, error = %e, "kept databases not swept");
            }
        }
        Ok(())
    }

    async fn step2_env(&self, env: &str) -> Result<()> {
        let Some(state) = self.step2_state(env).await? else {
            return Ok(());
        };
        let owed: Vec<String> = items(&state)
            .iter()
            .filter(|i| i.pending && i.excluded.is_none())
            .map(|i| i.item.id.clone())
            .collect();
        let pause = self
            .verify_pause_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        futures_util::stream::iter(owed.into_iter().map(Ok))
            .try_for_each_concurrent(STEP2_VERIFY_PARALLEL, |item| async move {
                if pause > 0 {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                self.verify_item(env, &item).await
            })
            .await?;
        let Some(state) = self.step2_state(env).await? else {
            return Ok(());
        };
        self.notify_makers(env, &state, MailPurpose::Items).await?;
        self.notify_admin(env, &state).await
    }

    async fn step2_state(&self, env: &str) -> Result<Option<UpgradeState>> {
        Ok(self
            .upgrades
            .latest(env)
            .await?
            .map(|(_, s)| s)
            .filter(|s| s.status == Status::Step2Verifying && s.items.is_some()))
    }

    /// Re-sends each maker the list of their items still open (`uplift upgrade
    /// notify`); admins only.
    pub async fn upgrade_notify(&self, actor: &Actor, env: &str) -> Result<api::items::Notified> {
        policy::admin(actor)?;
        self.env(env).await?;
        let (_, state) = self.serving_upgrade(env).await?;
        let sent = self
            .notify_makers(env, &state, MailPurpose::Reminder)
            .await?;
        Ok(api::items::Notified { value: sent })
    }

    /// Mails each maker their items: all of them once (`Items`, when every first
    /// verification is done), or those still open (`Reminder`). Returns who was mailed.
    async fn notify_makers(
        &self,
        env: &str,
        state: &UpgradeState,
        purpose: MailPurpose,
    ) -> Result<Vec<api::items::NoticeSent>> {
        let all = items(state);
        if purpose == MailPurpose::Items && all.iter().any(|i| i.pending) {
            return Ok(Vec::new());
        }
        let Some(mailer) = self.flows.mailer() else {
            return Ok(Vec::new());
        };
        let mut sent = Vec::new();
        for (to, theirs) in self.makers(all).await? {
            let theirs: Vec<&ItemState> = match purpose {
                MailPurpose::Items if mailed(state, &to, purpose) => continue,
                MailPurpose::Reminder => theirs.into_iter().filter(|i| open(i)).collect(),
                _ => theirs,
            };
            if theirs.is_empty() {
                continue;
            }
            let (subject, body) = self.items_notice(env, &theirs, purpose);
            let id = match mailer
                .send(std::slice::from_ref(&to), &subject, &body)
                .await
            {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(to = %to, error = %e, "step 2 notice not sent");
                    continue;
                }
            };
            let ids = theirs.iter().map(|i| i.item.id.clone()).collect();
            self.upgrades
                .record_mail(env, &to, purpose, ids, id)
                .await?;
            sent.push(api::items::NoticeSent {
                to,
                items: theirs.len() as u32,
            });
        }
        Ok(sent)
    }

    /// The admin who started the upgrade hears once that every item is verified or
    /// excluded: step 3 may start.
    async fn notify_admin(&self, env: &str, state: &UpgradeState) -> Result<()> {
        let all = items(state);
        if all.is_empty()
            || all.iter().any(open)
            || state
                .mails
                .iter()
                .any(|(_, p, _)| *p == MailPurpose::AllVerified)
        {
            return Ok(());
        }
        let Some(mailer) = self.flows.mailer() else {
            return Ok(());
        };
        let counts = crate::items::counts_of(all);
        let subject = format!("Upgrade of '{env}': every item is verified or excluded");
        let body = format!(
            "All {} items of the upgrade of '{env}' are verified ({}) or excluded ({}).\nStep 3 can start: {}\n",
            counts.total,
            counts.verified,
            counts.excluded,
            self.address(&format!("/api/environments/{env}/upgrade"))
        );
        let to = state.actor.clone();
        match mailer
            .send(std::slice::from_ref(&to), &subject, &body)
            .await
        {
            Ok(id) => {
                self.upgrades
                    .record_mail(env, &to, MailPurpose::AllVerified, Vec::new(), id)
                    .await?;
            }
            Err(e) => tracing::warn!(to = %to, error = %e, "step 2 notice not sent"),
        }
        Ok(())
    }

    /// Each owner and editor who is an active user, with the items they own or edit.
    pub(crate) async fn makers<'s>(
        &self,
        all: &'s [ItemState],
    ) -> Result<BTreeMap<String, Vec<&'s ItemState>>> {
        let mut by: BTreeMap<String, Vec<&ItemState>> = BTreeMap::new();
        for i in all {
            for who in std::iter::once(&i.item.owner).chain(&i.item.editors) {
                let list = by.entry(who.to_lowercase()).or_default();
                if !list.iter().any(|x| x.item.id == i.item.id) {
                    list.push(i);
                }
            }
        }
        let mut users = BTreeMap::new();
        for (who, list) in by {
            let user = self.store.control().get_user(&who).await?;
            if user.is_some_and(|u| u.status == UserStatus::Active) {
                users.insert(who, list);
            }
        }
        Ok(users)
    }

    /// A maker's notice: each item with its open errors, summed up, and its report.
    fn items_notice(
        &self,
        env: &str,
        theirs: &[&ItemState],
        purpose: MailPurpose,
    ) -> (String, String) {
        let errors: usize = theirs.iter().map(|i| i.open_errors().count()).sum();
        let subject = format!(
            "Upgrade of '{env}': {} item{} to verify, {errors} open error{}",
            theirs.len(),
            plural(theirs.len()),
            plural(errors)
        );
        let mut body = match purpose {
            MailPurpose::Reminder => {
                format!("These items of the upgrade of '{env}' are still open.\n")
            }
            _ => format!(
                "The upgrade of '{env}' has copied these apps and flows, rewritten for the new schema and bound to the test database. Check each, fix what is open, and sign it off.\n"
            ),
        };
        for i in theirs {
            let open: Vec<_> = i.open_errors().collect();
            let kind = match i.item.kind {
                uplift_upgrade::items::ItemKind::App => "app",
                uplift_upgrade::items::ItemKind::Flow => "flow",
            };
            body.push_str(&format!(
                "\n- {kind} '{}': {} open error{}\n",
                i.item.name,
                open.len(),
                plural(open.len())
            ));
            for t in open {
                let f = &t.finding.finding;
                body.push_str(&format!("    {}: {}\n", f.location, f.message));
            }
            let report = format!("/api/environments/{env}/upgrade/items/{}/report", i.item.id);
            body.push_str(&format!("  report: {}\n", self.address(&report)));
        }
        (subject, body)
    }

    /// An address of this server: under its public URL when it has one.
    pub(crate) fn address(&self, path: &str) -> String {
        match self.public_url.get() {
            Some(base) => format!("{base}{path}"),
            None => path.to_string(),
        }
    }

    /// Sets the address notices link to (`--public-url`, else where the server listens).
    pub fn set_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_string());
    }
}

fn items(state: &UpgradeState) -> &[ItemState] {
    state.items.as_deref().unwrap_or_default()
}

/// Not yet verified or excluded.
fn open(i: &ItemState) -> bool {
    !matches!(i.status(), ItemStatus::Verified | ItemStatus::Excluded)
}

pub(crate) fn mailed(state: &UpgradeState, to: &str, purpose: MailPurpose) -> bool {
    state
        .mails
        .iter()
        .any(|(t, p, _)| *p == purpose && t.eq_ignore_ascii_case(to))
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
