"""The push's control plane without a cluster or a GPU: the WeightStore mailbox (its class, in-process), one
receiver per replica on fake AsyncLLMs whose every call is bound to the installed AsyncLLM's signature, and the
trainer's StoreClient making the calls vLLM's trainer engine makes. Each replica joins the group at its own
ranks, the version reaches vLLM and comes back as the replica's stamp, and a failed, silent or restarted replica
fails the push by name instead of hanging it. The real vLLM trainer engine drives the same pieces in
tests/train/test_weight_push.py."""
from __future__ import annotations

import asyncio

import pytest

from arena_ray.serving import weight_plan as wp
from arena_ray.serving.engines import VLLMEngine
from arena_ray.serving.weight_store import Store
from arena_ray.serving.weight_transfer import StoreClient, WeightReceiver
from tests.serving.push_fakes import REQUESTS, WT, FakeAsyncLLM, Remote, group
from tests.serving.vllm_source import dataclass_init, needs_vllm

pytestmark = needs_vllm


def push(client: StoreClient, rdv: wp.Rendezvous, version: int) -> None:
    """The client calls vLLM's NCCL trainer engine makes: trainer_init, then send_weights (finish without a
    version: it comes from the client)."""
    client.init_weight_transfer_engine({"master_address": rdv.master_address, "master_port": rdv.master_port,
                                        "rank_offset": 1, "world_size": rdv.world_size, "packed": True})
    client.start_weight_update()
    client.update_weights({"names": ["w"], "dtype_names": ["bfloat16"], "shapes": [[2]]})
    client.version = version
    client.finish_weight_update()


def test_every_replica_joins_at_its_ranks_and_answers_with_the_pushed_version():
    rdv = wp.plan_rendezvous("127.0.0.1", 29500, 2, 2)
    with group() as g:
        client = StoreClient(g.call)
        push(client, rdv, 3)
    assert client.loaded == {0: 3, 1: 3}
    worker_init = dataclass_init(f"{WT}.nccl_engine", "NCCLWeightTransferInitInfo")
    for replica, engine in enumerate(g.engines):
        assert [c[0] for c in engine.calls] == ["init_weight_transfer_engine", "start_weight_update", "update_weights",
                                                "finish_weight_update", "reset_prefix_cache", "get_weight_version"]
        init_info = engine.calls[0][1][0].init_info
        worker_init.bind(**init_info)
        assert init_info["rank_offset"] == rdv.ranks(replica)[0] and init_info["world_size"] == 5
        assert engine.calls[2][1][0].update_info["names"] == ["w"]
        assert engine.calls[3][2] == {"weight_version": "3"}   # vLLM commits our version...
        assert g.stamps[replica] == [3]                         # ...and the replica stamps its answers with it


def test_a_failing_replica_fails_the_call_by_name():
    with group(fail={1: "update_weights"}) as g:
        client = StoreClient(g.call)
        client.start_weight_update()
        with pytest.raises(RuntimeError, match=r"update_weights failed on replica 1: RuntimeError: update_weights broke"):
            client.update_weights({"names": [], "dtype_names": [], "shapes": []})


def test_a_silent_or_restarted_replica_stops_the_push():
    with group(timeout_s=0.3) as g:
        g.receivers[1].stop()   # no longer answers
        with pytest.raises(TimeoutError, match=r"start_weight_update: replicas \[1\] did not answer"):
            StoreClient(g.call).start_weight_update()
        g.receiver(1, "replica-1-restarted")   # Serve's replacement joins under the same rank
        with pytest.raises(RuntimeError, match=r"replicas \[1\] restarted since the weight-transfer group formed"):
            StoreClient(g.call).start_weight_update()


def test_roster_waits_for_every_replica():
    async def scenario():
        store = Store()
        waiting = asyncio.ensure_future(store.roster(2, 5))
        assert await store.join(1, {"replica": "b"}) == 0
        await store.join(0, {"replica": "a"})
        assert await waiting == {0: {"replica": "a"}, 1: {"replica": "b"}}
        with pytest.raises(TimeoutError, match=r"replicas \[2\] of 3 did not join"):
            await store.roster(3, 0.05)
    asyncio.run(scenario())


def test_receiver_waits_for_the_store_and_for_its_version():
    async def scenario():
        store, found = Store(), []
        engine = FakeAsyncLLM()

        def find():  # the learner's job opens the store after the replicas are up
            found.append(len(found))
            return Remote(store) if len(found) > 2 else None
        receiver = WeightReceiver(engine, find, 0, 1, {"replica": "a"}, lambda v: None, REQUESTS, retry_s=0.01)
        receiver.start()
        await store.roster(1, 5)
        waiting = asyncio.ensure_future(receiver.wait_loaded(2, 5))
        await store.call("start_weight_update", None, {0: "a"}, 5)
        assert not waiting.done()
        await store.call("finish_weight_update", {"weight_version": "2"}, {0: "a"}, 5)
        await waiting
        with pytest.raises(RuntimeError, match="weight version 3 was not pushed to replica 0 .it holds 2."):
            await receiver.wait_loaded(3, 0.05)
        receiver.stop()
    asyncio.run(scenario())


def test_ipc_handles_leave_the_trainer_pickled():
    sent = []
    client = StoreClient(lambda m, p: sent.append((m, p)) or {})
    client.update_weights({"names": ["w"], "dtype_names": ["float32"], "shapes": [[1]], "ipc_handles": [{"g": (1,)}]})
    assert "ipc_handles_pickled" in sent[0][1] and "ipc_handles" not in sent[0][1]


def test_the_engine_takes_a_pushed_version_from_its_receiver():
    """VLLMEngine.load_weights, as a replica's catch-up calls it with the store's receipt (no vLLM started)."""
    engine = VLLMEngine.__new__(VLLMEngine)
    engine.weight_version, engine.receiver = 0, None

    async def scenario():
        with pytest.raises(RuntimeError, match="pushed by nccl, but this engine has no weight_transfer_config"):
            await engine.load_weights(wp.receipt("nccl", 1, {0: 1}), 1)
        engine.receiver = WeightReceiver(FakeAsyncLLM(), lambda: None, 0, 1, {}, engine._loaded, REQUESTS)
        waiting = asyncio.ensure_future(engine.load_weights(wp.receipt("nccl", 1, {0: 1}), 1))
        await asyncio.sleep(0)
        assert not waiting.done()
        await engine.receiver._set_loaded(1)
        await waiting
        assert engine.weight_version == 1
    asyncio.run(scenario())
