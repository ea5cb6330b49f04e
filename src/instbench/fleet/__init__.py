"""What decides and tracks a fleet run: its model (options, tasks, plan), the plan made from
them, capacity (vCPU quotas and budget), cost, user data, and the run itself: the
orchestrator (the flow of each task and of the run), with its watcher, its workers, what
one launch is (launching), pair tasks (pairs: a server and a client, their ports), the
collection of results (collect), the run's own resources and its status and manifest.

It calls AWS only through `instbench.aws` (typed functions and errors) and never sees a
boto3 client or a botocore exception.
"""
