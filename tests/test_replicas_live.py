"""Three ``walletfaq serve --store postgresql://...`` processes on loopback ports, over a real
PostgreSQL: an edit through one is served by all three; ``kill -9`` of a replica during a
stream of edits loses no acknowledged edit and leaves nothing half-applied; PostgreSQL stopped
and restarted: the replicas answer throughout (reads 200), ``/readyz`` says degraded while it is
down, edits answer 503, and afterwards they catch up by themselves (edits written straight into
the store while their LISTEN connections were broken included).

The replicas use the tiny test encoder (:mod:`tests.replica_support`); every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

import httpx  # noqa: E402

from tests import replica_support  # noqa: E402
from tests.replica_support import (  # noqa: E402
    faq,
    new_store,
    start_replica,
    stop_replica,
    terminate_listeners,
    wait_for,
)
from tests.store_support import PostgresCluster  # noqa: E402
from tests.test_server_live import free_port  # noqa: E402
from walletfaq.store import Change, Store  # noqa: E402

outage_cluster = replica_support.outage_cluster  # a cluster these tests stop and restart

TOKENS = {"WALLETFAQ_ADMIN_TOKENS": "alice:alice-token,bob:bob-token"}
ALICE = {"Authorization": "Bearer alice-token"}


@dataclass
class Replica:
    process: subprocess.Popen[str]
    url: str

    def get(self, path: str, **options: object) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10, **options)  # type: ignore[arg-type]

    def serves(self, entry_id: str, answer: str | None = None) -> bool:
        try:
            response = self.get(f"/v1/entries/{entry_id}")
        except httpx.TransportError:
            return False
        return response.status_code == 200 and answer in (None, response.json()["answer"])


@dataclass
class Deployment:
    store: Store
    store_url: str
    replicas: list[Replica]


@pytest.fixture
def deployment(outage_cluster: PostgresCluster) -> Iterator[Deployment]:
    """A fresh store (q1..q5) and three replicas of it, ready."""
    url = outage_cluster.new_database()
    store = new_store(url)
    replicas = []
    try:
        for _ in range(3):
            port = free_port()
            process = start_replica(url, port, "--poll-interval", "0.5", env=TOKENS)
            replicas.append(Replica(process, f"http://127.0.0.1:{port}"))
        for replica in replicas:
            wait_for(lambda r=replica: ready(r), "a replica is ready", limit_s=90)
        yield Deployment(store, url, replicas)
    finally:
        outputs = [stop_replica(replica.process) for replica in replicas]
        store.close()
    for output in outputs:
        assert "Traceback" not in output, output


def ready(replica: Replica) -> bool:
    assert replica.process.poll() is None, replica.process.communicate()[0]
    try:
        return replica.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def on_all(replicas: list[Replica], check: Callable[[Replica], bool], what: str) -> None:
    for replica in replicas:
        wait_for(lambda r=replica: check(r), f"{what} on {replica.url}", limit_s=15)


def test_an_edit_through_one_replica_is_served_by_all_three(deployment: Deployment) -> None:
    first, *others = deployment.replicas
    q1 = {**deployment.store.entry("q1").to_dict(), "answer": "三个副本都看到。"}
    response = httpx.put(f"{first.url}/v1/entries/q1", json=q1, headers=ALICE, timeout=30)
    assert response.status_code == 200 and response.json()["revision"] == 2
    assert first.serves("q1", "三个副本都看到。")  # read-your-writes: at once
    on_all(others, lambda r: r.serves("q1", "三个副本都看到。"), "the edit is served")
    for replica in deployment.replicas:
        store_status = replica.get("/readyz").json()["store"]
        assert (store_status["revision"], store_status["lag"]["revisions"]) == (2, 0)
    assert deployment.store.log()[-1].author == "alice"


def test_kill_9_of_a_replica_during_a_stream_of_edits_loses_no_acknowledged_edit(
    deployment: Deployment,
) -> None:
    *survivors, victim = deployment.replicas
    acknowledged: list[str] = []
    sent: list[str] = []
    outcomes: Counter[str] = Counter()

    def stream() -> None:
        with httpx.Client(base_url=victim.url, headers=ALICE, timeout=30) as client:
            for number in range(400):
                entry_id = f"k{number}"
                sent.append(entry_id)
                try:
                    response = client.post("/v1/entries", json=faq(entry_id, f"流水问题{number}"))
                except httpx.TransportError as exc:
                    outcomes[type(exc).__name__] += 1
                    return  # the replica is gone
                outcomes[str(response.status_code)] += 1
                if response.is_success:
                    acknowledged.append(entry_id)

    sender = threading.Thread(target=stream)
    sender.start()
    wait_for(lambda: len(acknowledged) >= 15, "15 edits acknowledged", limit_s=60)
    os.kill(victim.process.pid, signal.SIGKILL)
    sender.join(timeout=60)
    victim.process.wait(timeout=30)
    assert not sender.is_alive() and len(acknowledged) < 400, outcomes

    store = deployment.store
    in_store = [i for i in store.entries().ids if i.startswith("k")]
    assert set(acknowledged) <= set(in_store)  # every 2xx is committed
    assert set(in_store) <= set(sent) and len(in_store) <= len(acknowledged) + 1  # at most the
    # one in flight when killed, and then whole:
    for entry_id in in_store:
        assert store.entry(entry_id).question == f"流水问题{entry_id[1:]}"
    assert store.head() == 1 + len(in_store)  # one revision per edit, none half-written
    assert all(r.changes == 1 for r in store.log()[1:])
    last = in_store[-1]
    on_all(survivors, lambda r: r.serves(last), "the last committed edit is served")
    for replica in survivors:
        page = replica.get("/v1/entries", params={"limit": 500}).json()
        served = [e["id"] for e in page["entries"] if e["id"].startswith("k")]
        assert served == in_store and page["revision"] == store.head()


def test_postgresql_stopped_and_restarted_replicas_answer_throughout_and_catch_up(
    deployment: Deployment, outage_cluster: PostgresCluster
) -> None:
    replicas, store = deployment.replicas, deployment.store
    assert terminate_listeners(deployment.store_url) == 3  # LISTEN broken on every replica:
    store.apply([Change.add(faq("gap", "监听断开时写的"))], author="bob")  # written meanwhile
    on_all(replicas, lambda r: r.serves("gap"), "the edit made while LISTEN was broken")

    reads: Counter[int] = Counter()
    reading = threading.Event()
    reading.set()

    def read() -> None:
        with httpx.Client(timeout=10) as client:
            number = 0
            while reading.is_set() and number < 5000:
                replica = replicas[number % 3]
                body = {"question": f"问题{number % 5 + 1}怎么办 {number}", "k": 1}
                reads[client.post(f"{replica.url}/v1/ask", json=body).status_code] += 1
                number += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        outage_cluster.stop_server()
        try:
            on_all(replicas, lambda r: r.get("/readyz").json()["status"] == "degraded", "degraded")
            for replica in replicas:
                ready = replica.get("/readyz")
                assert ready.status_code == 200 and ready.json()["store"]["degraded_reason"]
            edit = httpx.post(
                f"{replicas[0].url}/v1/entries", json=faq("x", "停机时"), headers=ALICE
            )
            assert edit.status_code == 503 and "Retry-After" in edit.headers
        finally:
            outage_cluster.start()
        # written straight into the store before the replicas reconnect
        store.apply([Change.add(faq("after", "重启之后写的"))], author="bob")
        on_all(replicas, lambda r: r.serves("after"), "the edit made after the restart")
        on_all(replicas, lambda r: r.get("/readyz").json()["status"] == "ready", "ready again")
        on_all(replicas, lambda r: r.get("/readyz").json()["store"]["listening"], "listening")
    finally:
        reading.clear()
        reader.join(timeout=30)
    assert set(reads) == {200} and reads[200] > 0, reads  # answered throughout
    assert not any(replica.serves("x") for replica in replicas)  # the refused edit: nowhere
    assert "x" not in store.entries().ids
