//! CloudFormation stacks: apply a template through a change set, delete, and
//! follow stack events until the stack settles.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Stack, StackEvent, StackStatus, TemplateStage,
};
use aws_sdk_cloudformation::Client;

use crate::changes::PlannedChange;
use crate::progress::Reporter;

/// Maximum pause between two polls of a stack or change set.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A CloudFormation call or stack operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{operation} on stack {stack} failed: {message}")]
    Aws {
        operation: &'static str,
        stack: String,
        message: String,
    },

    #[error("change set for stack {stack} failed: {reason}")]
    ChangeSetFailed { stack: String, reason: String },

    #[error("stack {stack} ended in {status}{}", format_failures(.failures))]
    Failed {
        stack: String,
        status: String,
        failures: Vec<ResourceFailure>,
    },

    #[error("stack {stack} is in ROLLBACK_COMPLETE after a failed create, so it has nothing to compare with; `deployer up` deletes it and creates it again")]
    NeedsRecreate { stack: String },

    #[error("stack {stack} does not exist; create it with `deployer up`")]
    NotDeployed { stack: String },

    #[error("stack {stack} has no {key} output; run `deployer up` to update it")]
    MissingOutput { stack: String, key: String },

    #[error("change set {change_set} of stack {stack} no longer exists: another deploy executed a change set of the stack first, and CloudFormation then deletes the others")]
    ChangeSetGone { stack: String, change_set: String },

    #[error("DescribeStacks of every stack failed: {message}")]
    List { message: String },

    #[error("stack {stack} is in UPDATE_ROLLBACK_FAILED; fix the resources named in its events, then run `aws cloudformation continue-update-rollback --stack-name {stack}` and run this command again")]
    RollbackFailed { stack: String },
}

/// A resource that failed during a stack operation, with CloudFormation's reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResourceFailure {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
}

fn format_failures(failures: &[ResourceFailure]) -> String {
    failures
        .iter()
        .map(|failure| {
            format!(
                "\n  {} ({}) {}: {}",
                failure.logical_id, failure.resource_type, failure.status, failure.reason
            )
        })
        .collect()
}

/// A change set that was created and not yet executed or deleted.
#[derive(Debug, Clone)]
pub struct ChangeSetPlan {
    pub stack: String,
    pub change_set: String,
    /// The change set creates the stack, so CloudFormation keeps it in an
    /// empty stack in REVIEW_IN_PROGRESS until it runs.
    pub creates_stack: bool,
    pub changes: Vec<PlannedChange>,
}

/// Number of change sets that one deploy plans before it gives up, when
/// other deploys of the same stack keep executing theirs first.
pub const MAX_PLANS: u32 = 3;

/// Returns the progress note for a change set that another deploy overtook.
pub fn overtaken_note(stack: &str) -> String {
    format!("stack {stack}: another deploy executed its change set first; planning again")
}

/// Handling of a stack that a failed create left in ROLLBACK_COMPLETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Delete it, so that the change set creates it again.
    Recreate,
    /// Leave it and fail, for a preview that must change nothing.
    Refuse,
}

/// Result of `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created,
    Updated,
    Unchanged,
}

/// Result of `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    AlreadyAbsent,
}

/// A stack's status and outputs.
#[derive(Debug, Clone)]
pub struct StackState {
    pub name: String,
    pub status: String,
    pub outputs: Vec<(String, String)>,
}

impl StackState {
    /// Returns the value of output `key`, or an error that says to run `up`.
    pub fn output(&self, key: &str) -> Result<&str, StackError> {
        self.outputs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| StackError::MissingOutput {
                stack: self.name.clone(),
                key: key.to_string(),
            })
    }
}

/// CloudFormation operations on one stack.
pub struct Stacks<'a> {
    client: &'a Client,
    reporter: &'a dyn Reporter,
}

impl<'a> Stacks<'a> {
    pub fn new(client: &'a Client, reporter: &'a dyn Reporter) -> Self {
        Stacks { client, reporter }
    }

    /// Returns the stack's state, or `None` when no such stack exists.
    pub async fn describe(&self, stack: &str) -> Result<Option<StackState>, StackError> {
        let response = self.client.describe_stacks().stack_name(stack).send().await;
        let stacks = match response {
            Ok(output) => output.stacks.unwrap_or_default(),
            Err(err) if is_missing_stack(&err) => return Ok(None),
            Err(err) => return Err(aws_error("DescribeStacks", stack, err)),
        };

        Ok(stacks.first().map(stack_state))
    }

    /// Returns the state of a stack that must exist, for the commands that
    /// work on a deployed stack; a missing one is an error that says to run `up`.
    pub async fn describe_deployed(&self, stack: &str) -> Result<StackState, StackError> {
        self.describe(stack)
            .await?
            .ok_or_else(|| StackError::NotDeployed {
                stack: stack.to_string(),
            })
    }

    /// Returns the names of the stacks, deleted ones aside, whose parameter
    /// `name` has the value `value`.
    pub async fn stacks_with_parameter(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Vec<String>, StackError> {
        let mut found = Vec::new();
        let mut pages = self.client.describe_stacks().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| StackError::List {
                message: crate::aws::error_message(&err),
            })?;

            for stack in page.stacks() {
                let deleted = stack.stack_status() == Some(&StackStatus::DeleteComplete);
                let uses = stack.parameters().iter().any(|parameter| {
                    parameter.parameter_key() == Some(name)
                        && parameter.parameter_value() == Some(value)
                });
                if uses && !deleted {
                    found.push(stack.stack_name().unwrap_or_default().to_string());
                }
            }
        }
        Ok(found)
    }

    /// Returns the template text that the stack was last created or updated
    /// with, exactly as it was sent.
    pub async fn deployed_template(&self, stack: &str) -> Result<String, StackError> {
        let output = self
            .client
            .get_template()
            .stack_name(stack)
            .template_stage(TemplateStage::Original)
            .send()
            .await
            .map_err(|err| aws_error("GetTemplate", stack, err))?;

        Ok(output.template_body.unwrap_or_default())
    }

    /// Creates or updates the stack from `template` through a change set and
    /// waits until it settles.
    /// When another deploy executes its change set first, this plans again,
    /// at most `MAX_PLANS` times.
    pub async fn apply(&self, stack: &str, template: &str) -> Result<ApplyOutcome, StackError> {
        let mut attempt = 1;
        loop {
            match self.plan_and_execute(stack, template).await {
                Err(StackError::ChangeSetGone { .. }) if attempt < MAX_PLANS => {
                    self.reporter.note(&overtaken_note(stack));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn plan_and_execute(
        &self,
        stack: &str,
        template: &str,
    ) -> Result<ApplyOutcome, StackError> {
        let Some(plan) = self.plan(stack, template, Recovery::Recreate).await? else {
            return Ok(ApplyOutcome::Unchanged);
        };
        self.reporter.planned(stack, &plan.changes);
        self.execute(&plan).await
    }

    /// Creates a change set for `template` and returns its changes, or
    /// `None` (after deleting the empty change set) when nothing would change.
    /// A stack in progress is waited for first, and `recovery` decides the
    /// fate of a stack left in ROLLBACK_COMPLETE.
    pub async fn plan(
        &self,
        stack: &str,
        template: &str,
        recovery: Recovery,
    ) -> Result<Option<ChangeSetPlan>, StackError> {
        let change_type = self.prepare(stack, recovery).await?;
        // The process id keeps two deployers that start in the same
        // millisecond from choosing the same name.
        let change_set = format!("deployer-{}-{}", unix_millis(), std::process::id());

        self.create_change_set(stack, &change_set, template, &change_type)
            .await?;
        let plan = ChangeSetPlan {
            stack: stack.to_string(),
            change_set,
            creates_stack: change_type == ChangeSetType::Create,
            changes: Vec::new(),
        };
        match self.wait_for_change_set(stack, &plan.change_set).await {
            Ok(Some(changes)) => Ok(Some(ChangeSetPlan { changes, ..plan })),
            Ok(None) => {
                self.discard(&plan).await?;
                self.reporter.note(&format!("stack {stack}: no changes"));
                Ok(None)
            }
            Err(err) => {
                // A failed change set of a new stack leaves an empty stack behind.
                if plan.creates_stack {
                    if let Err(cleanup) = self.discard(&plan).await {
                        tracing::warn!(stack, error = %cleanup, "cannot delete the failed change set");
                    }
                }
                Err(err)
            }
        }
    }

    /// Executes a planned change set and waits until the stack settles.
    pub async fn execute(&self, plan: &ChangeSetPlan) -> Result<ApplyOutcome, StackError> {
        let stack = plan.stack.as_str();
        let seen = self.current_event_ids(stack).await?;
        self.client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(&plan.change_set)
            .send()
            .await
            .map_err(|err| change_set_error("ExecuteChangeSet", stack, &plan.change_set, err))?;

        self.wait_until_settled(stack, seen).await?;
        match plan.creates_stack {
            true => Ok(ApplyOutcome::Created),
            false => Ok(ApplyOutcome::Updated),
        }
    }

    /// Deletes a change set that will not run. For a change set that would
    /// have created the stack, also deletes the empty stack in
    /// REVIEW_IN_PROGRESS that CloudFormation made to hold it.
    pub async fn discard(&self, plan: &ChangeSetPlan) -> Result<(), StackError> {
        self.delete_change_set(&plan.stack, &plan.change_set)
            .await?;
        tracing::info!(
            stack = plan.stack,
            change_set = plan.change_set,
            "deleted change set"
        );
        if plan.creates_stack {
            self.delete_empty(&plan.stack).await?;
        }
        Ok(())
    }

    /// Deletes a stack that has no resources and waits until it is gone.
    async fn delete_empty(&self, stack: &str) -> Result<(), StackError> {
        self.client
            .delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(|err| aws_error("DeleteStack", stack, err))?;
        self.wait_until_settled_quietly(stack).await?;
        tracing::info!(stack, "deleted the empty stack of the change set");
        Ok(())
    }

    /// Brings the stack to a state a change set can start from and returns
    /// the change set type to use.
    async fn prepare(&self, stack: &str, recovery: Recovery) -> Result<ChangeSetType, StackError> {
        loop {
            let Some(state) = self.describe(stack).await? else {
                return Ok(ChangeSetType::Create);
            };

            match state.status.as_str() {
                // A stack created by a change set that never ran has no resources.
                "REVIEW_IN_PROGRESS" => return Ok(ChangeSetType::Create),
                "ROLLBACK_COMPLETE" if recovery == Recovery::Refuse => {
                    return Err(StackError::NeedsRecreate {
                        stack: stack.into(),
                    });
                }
                "ROLLBACK_COMPLETE" => {
                    self.reporter.note(&format!("stack {stack} is in ROLLBACK_COMPLETE after a failed create; deleting it to create it again"));
                    self.delete(stack).await?;
                    return Ok(ChangeSetType::Create);
                }
                "UPDATE_ROLLBACK_FAILED" => {
                    return Err(StackError::RollbackFailed {
                        stack: stack.into(),
                    });
                }
                status if status.ends_with("_IN_PROGRESS") => {
                    self.reporter.note(&format!(
                        "stack {stack} is in {status}; waiting for it to settle"
                    ));
                    self.wait_until_settled_quietly(stack).await?;
                }
                _ => return Ok(ChangeSetType::Update),
            }
        }
    }

    async fn create_change_set(
        &self,
        stack: &str,
        change_set: &str,
        template: &str,
        change_type: &ChangeSetType,
    ) -> Result<(), StackError> {
        self.client
            .create_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .change_set_type(change_type.clone())
            .template_body(template)
            .capabilities(Capability::CapabilityIam)
            .description("Created by the DSQL token rotation deployer")
            .send()
            .await
            .map_err(|err| aws_error("CreateChangeSet", stack, err))?;

        tracing::info!(
            stack,
            change_set,
            change_type = change_type.as_str(),
            "created change set"
        );
        Ok(())
    }

    /// Waits for the change set; returns its changes, or `None` when it has none.
    async fn wait_for_change_set(
        &self,
        stack: &str,
        change_set: &str,
    ) -> Result<Option<Vec<PlannedChange>>, StackError> {
        let mut poll = Poll::new();
        loop {
            let output = self
                .client
                .describe_change_set()
                .stack_name(stack)
                .change_set_name(change_set)
                .send()
                .await
                .map_err(|err| change_set_error("DescribeChangeSet", stack, change_set, err))?;

            match output.status() {
                Some(ChangeSetStatus::CreateComplete) => {
                    return Ok(Some(
                        output
                            .changes()
                            .iter()
                            .filter_map(PlannedChange::from_change)
                            .collect(),
                    ));
                }
                Some(ChangeSetStatus::Failed) => {
                    let reason = output
                        .status_reason()
                        .unwrap_or("no reason given")
                        .to_string();
                    if is_no_changes_reason(&reason) {
                        return Ok(None);
                    }
                    return Err(StackError::ChangeSetFailed {
                        stack: stack.into(),
                        reason,
                    });
                }
                _ => poll.wait().await,
            }
        }
    }

    /// Deletes a change set; one that is already gone counts as deleted.
    async fn delete_change_set(&self, stack: &str, change_set: &str) -> Result<(), StackError> {
        let response = self
            .client
            .delete_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .send()
            .await;

        match response.map_err(|err| change_set_error("DeleteChangeSet", stack, change_set, err)) {
            Ok(_) | Err(StackError::ChangeSetGone { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Deletes the stack and waits until it is gone. A missing stack is success.
    pub async fn delete(&self, stack: &str) -> Result<DeleteOutcome, StackError> {
        let Some(state) = self.describe(stack).await? else {
            self.reporter
                .note(&format!("stack {stack} does not exist; nothing to delete"));
            return Ok(DeleteOutcome::AlreadyAbsent);
        };
        if is_busy(&state.status) && state.status != "DELETE_IN_PROGRESS" {
            self.reporter.note(&format!(
                "stack {stack} is in {}; waiting for it to settle",
                state.status
            ));
            self.wait_until_settled_quietly(stack).await?;
        }

        let seen = self.current_event_ids(stack).await?;
        self.client
            .delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(|err| aws_error("DeleteStack", stack, err))?;
        tracing::info!(stack, "deleting stack");

        self.wait_until_settled(stack, seen).await?;
        Ok(DeleteOutcome::Deleted)
    }

    /// Follows events until the stack reaches a final status; a failed
    /// status becomes an error listing every failed resource. Events whose
    /// ids are in `seen` happened before the operation and are skipped.
    async fn wait_until_settled(
        &self,
        stack: &str,
        mut seen: HashSet<String>,
    ) -> Result<(), StackError> {
        let mut events = Vec::new();
        let mut poll = Poll::new();
        let started = Instant::now();
        loop {
            let state = self.describe(stack).await?;
            let fresh = self.new_events(stack, &mut seen).await?;
            for event in &fresh {
                self.reporter.event(stack, event);
            }
            events.extend(fresh);

            let Some(state) = state else {
                self.reporter.done_waiting();
                return Ok(());
            };
            if !state.status.ends_with("_IN_PROGRESS") {
                self.reporter.done_waiting();
                return settled_result(stack, &state.status, &events);
            }
            self.reporter
                .waiting(stack, &state.status, started.elapsed());
            poll.wait().await;
        }
    }

    async fn wait_until_settled_quietly(&self, stack: &str) -> Result<(), StackError> {
        let mut poll = Poll::new();
        let started = Instant::now();
        while let Some(state) = self.describe(stack).await? {
            if !is_busy(&state.status) {
                break;
            }
            self.reporter
                .waiting(stack, &state.status, started.elapsed());
            poll.wait().await;
        }
        self.reporter.done_waiting();
        Ok(())
    }

    /// Returns the ids of the stack's latest events, so that waiting for the
    /// next operation shows only the events it causes.
    async fn current_event_ids(&self, stack: &str) -> Result<HashSet<String>, StackError> {
        let mut seen = HashSet::new();
        self.new_events(stack, &mut seen).await?;
        Ok(seen)
    }

    /// Returns the stack's events that are not in `seen`, oldest first, and adds them to it.
    async fn new_events(
        &self,
        stack: &str,
        seen: &mut HashSet<String>,
    ) -> Result<Vec<ResourceEvent>, StackError> {
        let response = self
            .client
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await;
        let events = match response {
            Ok(output) => output.stack_events.unwrap_or_default(),
            Err(err) if is_missing_stack(&err) => return Ok(Vec::new()),
            Err(err) => return Err(aws_error("DescribeStackEvents", stack, err)),
        };

        let mut fresh: Vec<ResourceEvent> = events
            .iter()
            .filter(|event| seen.insert(event.event_id().unwrap_or_default().to_string()))
            .map(resource_event)
            .collect();
        fresh.reverse();
        Ok(fresh)
    }
}

/// Returns `Ok` for a successful final status, else the failed resources
/// among `events` with their reasons.
fn settled_result(stack: &str, status: &str, events: &[ResourceEvent]) -> Result<(), StackError> {
    if is_success(status) {
        return Ok(());
    }

    let failures = events
        .iter()
        .filter(|event| event.status.ends_with("_FAILED"))
        .map(|event| ResourceFailure {
            logical_id: event.logical_id.clone(),
            resource_type: event.resource_type.clone(),
            status: event.status.clone(),
            reason: event
                .reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        })
        .collect();
    Err(StackError::Failed {
        stack: stack.into(),
        status: status.into(),
        failures,
    })
}

/// One stack event, reduced to what progress output and errors need.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceEvent {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

fn resource_event(event: &StackEvent) -> ResourceEvent {
    ResourceEvent {
        logical_id: event.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: event.resource_type().unwrap_or_default().to_string(),
        status: event
            .resource_status()
            .map(|status| status.as_str().to_string())
            .unwrap_or_default(),
        reason: event.resource_status_reason().map(str::to_string),
    }
}

fn stack_state(stack: &Stack) -> StackState {
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|output| {
            Some((
                output.output_key()?.to_string(),
                output.output_value()?.to_string(),
            ))
        })
        .collect();

    StackState {
        name: stack.stack_name().unwrap_or_default().to_string(),
        status: stack
            .stack_status()
            .map(|status| status.as_str().to_string())
            .unwrap_or_default(),
        outputs,
    }
}

/// Checks whether an operation is changing the stack. REVIEW_IN_PROGRESS
/// is excluded: it marks a stack whose creating change set never ran, and no
/// operation will move it on, so waiting for it would never end.
fn is_busy(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS") && status != "REVIEW_IN_PROGRESS"
}

fn is_success(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" | "DELETE_COMPLETE"
    )
}

/// Checks whether an error reports a missing stack. CloudFormation reports it
/// as a generic ValidationError, so the message is the only signal.
fn is_missing_stack<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ValidationError")
        && err
            .message()
            .is_some_and(|message| message.contains("does not exist"))
}

/// Checks whether a failed change set's reason means "nothing to change".
/// CloudFormation words it in two ways, and has no error code for it.
fn is_no_changes_reason(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

fn aws_error<E>(operation: &'static str, stack: &str, err: E) -> StackError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    StackError::Aws {
        operation,
        stack: stack.to_string(),
        message: crate::aws::error_message(&err),
    }
}

/// Maps a change set call's error; ChangeSetNotFound becomes `ChangeSetGone`.
fn change_set_error<E>(operation: &'static str, stack: &str, change_set: &str, err: E) -> StackError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if err.code() == Some("ChangeSetNotFound") {
        return StackError::ChangeSetGone {
            stack: stack.to_string(),
            change_set: change_set.to_string(),
        };
    }
    aws_error(operation, stack, err)
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// Polling with a pause that grows from half a second to `MAX_POLL_INTERVAL`.
struct Poll {
    interval: Duration,
}

impl Poll {
    fn new() -> Self {
        Poll {
            interval: Duration::from_millis(500),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.interval).await;
        self.interval = (self.interval * 3 / 2).min(MAX_POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_no_change_wordings_are_recognised() {
        assert!(is_no_changes_reason("The submitted information didn't contain changes. Submit different information to create a change set."));
        assert!(is_no_changes_reason("No updates are to be performed."));
        assert!(!is_no_changes_reason(
            "Template format error: Unrecognized resource types"
        ));
    }

    #[test]
    fn failures_are_listed_in_message() {
        let err = StackError::Failed {
            stack: "tokens".into(),
            status: "ROLLBACK_COMPLETE".into(),
            failures: vec![ResourceFailure {
                logical_id: "RotatorFunction".into(),
                resource_type: "AWS::Lambda::Function".into(),
                status: "CREATE_FAILED".into(),
                reason: "Code not found".into(),
            }],
        };

        let message = err.to_string();

        assert!(
            message.starts_with("stack tokens ended in ROLLBACK_COMPLETE"),
            "{message}"
        );
        assert!(
            message
                .contains("RotatorFunction (AWS::Lambda::Function) CREATE_FAILED: Code not found"),
            "{message}"
        );
    }

    #[test]
    fn success_statuses() {
        assert!(is_success("CREATE_COMPLETE"));
        assert!(is_success("UPDATE_COMPLETE"));
        assert!(!is_success("ROLLBACK_COMPLETE"));
        assert!(!is_success("UPDATE_ROLLBACK_COMPLETE"));
    }
}
