"""The run's own AWS resources, from its start to its end: the uploaded agent (and suite
artifact), the run's security group, and the sweep that terminates every instance tagged
with the run id.

Apart from the orchestrator because these belong to the run, not to any task: the
orchestrator prepares them before the first launch and releases them after the last task,
whatever happened in between.
"""

from __future__ import annotations

import contextlib
import time

from instbench.agentpkg import AgentArchive, build_agent
from instbench.aws import launch, network
from instbench.aws.failures import AWS_ERRORS, REFUSED
from instbench.aws.session import AwsSession
from instbench.fleet.model import Plan
from instbench.journal import Journal
from instbench.storage.layout import artifact_key
from instbench.storage.local import AlreadyExists
from instbench.storage.s3 import S3Store


class RunResources:
    """Creates and releases what a run holds in AWS besides its instances' work."""

    def __init__(self, session: AwsSession, plan: Plan, journal: Journal, s3: S3Store) -> None:
        self.session = session
        self.plan = plan
        self.journal = journal
        self.s3 = s3
        self.agent: AgentArchive | None = None
        """The agent the instances download (set first thing in `prepare`)."""
        self.created_group: str | None = None
        """The security group this controller created (None when given or journalled)."""

    def prepare(self) -> None:
        """Upload the agent (and the suite artifact) once per run; create the run's
        security group if none was given."""
        self.agent = agent = build_agent()
        # AlreadyExists: same sha256, same bytes, uploaded by an earlier run.
        with contextlib.suppress(AlreadyExists):
            self.s3.put_new(artifact_key(agent.sha256), agent.data, "application/zip")
        suite = self.plan.options.suite
        if suite is not None:
            # Named by its digest like the agent; the instance checks the digest anyway.
            with contextlib.suppress(AlreadyExists):
                self.s3.put_new(artifact_key(suite.sha256, "json"), suite.data, "application/json")
        if self.plan.security_group is None:
            # create_run_security_group reuses the run's own group when it still exists
            # (a resume), and creates a new one when cleanup has deleted it meanwhile.
            self.journal.set_security_group(self.plan.run_id, "pending")
            group = network.create_run_security_group(
                self.session, self.plan.run_id, self.plan.vpc_id, self.plan.expires_at
            )
            self.journal.set_security_group(self.plan.run_id, group)
            self.plan.security_group = group
            self.created_group = group

    def terminate_all(self, attempts: int = 3) -> list[str]:
        """Terminate every instance tagged with this run that is not already gone.

        A refused TerminateInstances (EC2 racing an instance's own shutdown, e.g.
        InvalidAttachment.NotFound) is retried after describing again; what still fails
        after `attempts` is raised (the caller names `instbench cleanup`)."""
        ended: list[str] = []
        for attempt in range(1, attempts + 1):
            live = sorted(
                launch.describe_instances_by_run(self.session, self.plan.run_id, launch.LIVE_STATES)
            )
            if not live:
                break
            try:
                launch.terminate_instances(self.session, live)
            except REFUSED:
                if attempt == attempts:
                    raise
                time.sleep(attempt)
                continue
            self.journal.mark_terminated(self.plan.run_id, live)
            ended = sorted({*ended, *live})
            break
        return ended

    def release_group(self, cleaned: bool) -> str | None:
        """Delete the run's own security group; the group left to cleanup, if any.

        `cleaned` is False when the instances could not be terminated (AWS gone): then
        the group is left to cleanup without trying."""
        rid = self.plan.run_id
        group = self.created_group or self._journalled_group()
        if group and not cleaned:
            return group
        if group:
            ids = [r.instance_id for r in self.journal.tasks(rid) if r.instance_id]
            try:
                deleted = network.delete_security_group(self.session, group, ids)
            except AWS_ERRORS:
                deleted = False
            if deleted:
                self.journal.set_security_group(rid, None)
            else:
                # Still in use after waiting: the journal keeps it, cleanup sweeps it later.
                return group
        return None

    def release_placement_groups(self, cleaned: bool) -> list[str]:
        """Delete the run's placement groups (after its instances); those left to cleanup.

        `cleaned` False (the instances could not be terminated) leaves them all to
        cleanup without trying, as `release_group` does the security group."""
        rid = self.plan.run_id
        left: list[str] = []
        for name in self.journal.placement_groups(rid):
            if not cleaned:
                left.append(name)
                continue
            try:
                gone = network.delete_placement_group(self.session, name)
            except AWS_ERRORS:
                gone = False
            if gone:
                self.journal.set_placement_group(rid, name, "deleted")
            else:
                left.append(name)
        return left

    def _journalled_group(self) -> str | None:
        if self.plan.options.security_group:
            return None
        group = self.journal.run(self.plan.run_id).security_group_id
        return group if group and group != "pending" else None
