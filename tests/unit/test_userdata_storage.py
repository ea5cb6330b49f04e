"""User data of a storage task: fio installed from the distribution, the advertised
limits passed to the agent in the one strict form `--storage-advertised` accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_userdata import REAL_TOOLS, calls_of, params, run_script

from instbench.benchmarks import registry
from instbench.errors import UserError
from instbench.fleet.userdata import advertised_text, render_user_data

ADVERTISED = {"volume_iops": 16000.0, "ebs_baseline_mbps": 78.75, "instance_store_disks": 1.0}


def test_advertised_text_is_what_the_agent_parses() -> None:
    from instbench.benchmarks import storage

    text = advertised_text(ADVERTISED)
    assert text == "ebs_baseline_mbps=78.75,instance_store_disks=1,volume_iops=16000"
    assert storage.parse_advertised(text) == ADVERTISED


def test_storage_script_installs_fio_and_passes_the_limits(tmp_path: Path) -> None:
    p = params(
        benchmarks=("storage",),
        task_id="m6gd.large-storage-0",
        instance_type="m6gd.large",
        packages=registry.packages_for(("storage",)),
        agent_args=("--storage-advertised", advertised_text(ADVERTISED)),
    )
    code, calls, _uploads = run_script(
        render_user_data(p), tmp_path, with_cc=True, tools=(*REAL_TOOLS, "basename")
    )
    assert code == 0
    assert ["install", "-y", "fio"] in calls_of(calls, "dnf")
    (agent,) = [c for c in calls if c[0] == "python3"]
    i = agent.index("--storage-advertised")
    assert agent[i + 1] == advertised_text(ADVERTISED)


@pytest.mark.parametrize(
    "value",
    ["volume_iops=1;reboot", "volume_iops=$(id)", "VOLUME=1", "volume_iops=1,", "a=1 b=2"],
)
def test_malformed_advertised_never_reaches_the_script(value: str) -> None:
    with pytest.raises(UserError, match="--storage-advertised"):
        render_user_data(params(agent_args=("--storage-advertised", value)))


def test_data_volume_survives_the_journal(tmp_path: Path) -> None:
    from instbench.aws.launch import DataVolume
    from instbench.fleet.plan import FleetOptions
    from instbench.fleet.run import options_from_journal, options_to_params
    from instbench.journal import Journal

    volume = DataVolume(size_gib=64, iops=6000, throughput_mibps=500)
    opts = FleetOptions(["m6gd.large"], ("storage",), "bkt", data_volume=volume)
    journalled = options_to_params(opts)
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        journal.create_run(
            "r-1", "us-east-1", "aws", journalled, [("t", "m6gd.large", "storage", 0)]
        )
        restored, _, _ = options_from_journal(journal, "r-1")
        old = {k: v for k, v in journalled.items() if k != "data_volume"}
        journal.create_run("r-2", "us-east-1", "aws", old, [("t", "m6gd.large", "storage", 0)])
        legacy, _, _ = options_from_journal(journal, "r-2")
    finally:
        journal.close()
    assert restored.data_volume == volume
    assert legacy.data_volume == DataVolume()
