"""Everything that talks to AWS. Only `session.py` builds boto3 clients."""
