"""What decides and tracks a fleet run: its model (options, tasks, plan), the plan made from
them, capacity (vCPU quotas and budget), cost, user data, the orchestrator and its watcher.

It calls AWS only through `instbench.aws` (typed functions and errors) and never sees a
boto3 client or a botocore exception.
"""
