"""The sandbox: moto in server mode plus a simulated cloud-init, so the whole flow runs
offline on this machine with no AWS account (results labelled collection_method=sandbox)."""
