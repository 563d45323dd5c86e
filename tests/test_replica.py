"""``FAQRetriever.from_store``: a retriever built from the store of record that follows it, on
SQLite and on a real PostgreSQL (``store_location`` is parametrised over both).

What is specified here: the content served equals the store's latest revision; the index comes
from the user cache when the content was seen; a follower applies every pending revision in one
index build, embedding only the new texts; an edit written through the follower is served
before ``write`` returns; on PostgreSQL a commit wakes the follower at once (LISTEN), a broken
LISTEN connection is replaced and polling covers the gap; a store that fails leaves the last
revision served (degraded, with the reason) and the follower catches up by itself.
"""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from tests import replica_support
from tests.conftest import HashEncoder
from tests.replica_support import faq, new_store, terminate_listeners, wait_for
from tests.store_support import PostgresCluster
from walletfaq import FAQRetriever, StoreConflictError, StoreError, StoreUnavailableError
from walletfaq.data.contacts import Contact, ContactDirectory
from walletfaq.errors import WalletFAQError
from walletfaq.retrieval.replica import StoreFollower
from walletfaq.store import Change, Store

outage_cluster = replica_support.outage_cluster  # a cluster these tests stop and restart


@pytest.fixture
def store(store_location: str) -> Store:
    created = new_store(store_location)
    yield created
    created.close()


def served_equals_store(retriever: FAQRetriever, store: Store) -> bool:
    expected = store.entries()
    return retriever.corpus.entries == expected.entries


def test_from_store_serves_the_latest_revision(store: Store) -> None:
    store.apply([Change.add(faq("new", "新加的问题"))], author="bob")
    store.apply([Change.remove("q2")], author="bob")
    with FAQRetriever.from_store(store.url, model=HashEncoder()) as r:
        assert served_equals_store(r, store)
        assert r.follower is not None and r.follower.revision == r.follower.store_head == 3
        assert r.ask("新加的问题", k=1)[0].id == "new"
        assert not r.follower.following  # follow=False: nothing runs in the background


def test_a_store_object_is_used_as_it_is_and_left_open(store: Store) -> None:
    with FAQRetriever.from_store(store, model=HashEncoder()) as r:
        assert r.follower is not None and r.follower.store is store
    assert store.head() == 1  # still open


def test_the_index_is_loaded_from_the_cache_when_the_content_was_seen(store: Store) -> None:
    with FAQRetriever.from_store(store, model=HashEncoder()):
        pass
    again = HashEncoder()
    with FAQRetriever.from_store(store, model=again) as r:
        assert again.texts_encoded == 0  # loaded, nothing embedded
        assert served_equals_store(r, store)


def test_an_empty_store_is_refused_saying_how_to_fill_it(store_location: str) -> None:
    with Store.open(store_location, create=True) as empty:
        with pytest.raises(StoreError, match="holds no revision yet.*walletfaq store init"):
            FAQRetriever.from_store(empty, model=HashEncoder())


def test_a_missing_sqlite_store_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(StoreError, match="no walletfaq store at .*walletfaq store init"):
        FAQRetriever.from_store(str(tmp_path / "missing.db"), model=HashEncoder())


def test_a_store_written_by_a_newer_walletfaq_is_refused(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE walletfaq_alembic_version SET version_num = 'zz99'"))
    with pytest.raises(StoreError, match="written by a newer walletfaq.*upgrade walletfaq"):
        FAQRetriever.from_store(store.url, model=HashEncoder())


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf"), True, "1"])
def test_the_poll_interval_must_be_a_positive_number(store: Store, interval: object) -> None:
    with pytest.raises(WalletFAQError, match="poll_interval must be a positive number"):
        FAQRetriever.from_store(store, model=HashEncoder(), poll_interval=interval)  # type: ignore[arg-type]


def test_sync_applies_pending_revisions_in_one_build_embedding_only_new_texts(
    store: Store,
) -> None:
    encoder = HashEncoder()
    with FAQRetriever.from_store(store, model=encoder) as r:
        version, embedded = r.version, encoder.texts_encoded
        store.apply([Change.add(faq("new", "全新的问题文本"))], author="bob")
        q3 = store.entry("q3").to_dict()
        store.apply([Change.update({**q3, "answer": "只改答案。"})], author="bob")
        store.apply([Change.remove("q1")], author="bob")
        assert r.follower is not None and r.follower.sync() == 4
        assert r.version == version + 1  # one build for three revisions
        assert encoder.texts_encoded - embedded == 1  # the new question only
        assert served_equals_store(r, store)
        assert r.entry("q3").answer == "只改答案。" and "q1" not in r.corpus


def test_a_batch_larger_than_the_feed_limit_is_applied_in_several_builds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import walletfaq.retrieval.replica as replica

    monkeypatch.setattr(replica, "FEED_BATCH", 2)
    with FAQRetriever.from_store(store, model=HashEncoder()) as r:
        for number in range(5):
            store.apply([Change.add(faq(f"n{number}", f"问题编号{number}"))], author="bob")
        assert r.follower is not None and r.follower.sync() == 6
        assert served_equals_store(r, store)


def test_a_write_is_committed_and_served_before_it_returns(store: Store) -> None:
    with FAQRetriever.from_store(store, model=HashEncoder()) as r:
        assert r.follower is not None
        q2 = r.entry("q2").to_dict()
        revision = r.follower.write(
            [Change.update({**q2, "answer": "新答案。"})], author="carol", reason="policy"
        )
        assert r.entry("q2").answer == "新答案。"  # read-your-writes, no wait
        assert r.follower.revision == revision.number == store.head() == 2
        logged = store.log()[-1]
        assert (logged.author, logged.reason, logged.changes) == ("carol", "policy", 1)


def test_a_conditional_write_on_a_changed_entry_writes_nothing(store: Store) -> None:
    with FAQRetriever.from_store(store, model=HashEncoder()) as r:
        assert r.follower is not None
        q2 = r.entry("q2").to_dict()
        store.apply([Change.update({**q2, "answer": "别人先改了。"})], author="dave")
        with pytest.raises(StoreConflictError, match="changed in revision 2, after revision 1"):
            r.follower.write([Change.update({**q2, "answer": "x"})], author="carol", if_match=1)
        assert store.head() == 2


def test_following_serves_each_edit_within_a_deadline(store: Store) -> None:
    with FAQRetriever.from_store(store, model=HashEncoder(), follow=True, poll_interval=0.1) as r:
        assert r.follower is not None and r.follower.following
        store.apply([Change.add(faq("new", "跟随的问题"))], author="bob")
        wait_for(lambda: "new" in r.corpus, "the added entry is served")
        store.apply([Change.remove("new")], author="bob")
        wait_for(lambda: "new" not in r.corpus, "the removed entry is gone")
        assert served_equals_store(r, store) and r.follower.healthy
    assert not r.follower.following  # closed with the context


def test_readers_see_one_revision_or_the_next_never_a_mix(store: Store) -> None:
    pairs = [(f"p{i}", f"成对的问题{i}") for i in range(6)]
    with FAQRetriever.from_store(store, model=HashEncoder(), follow=True, poll_interval=0.05) as r:
        seen: list[int] = []
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                ids = set(r.corpus.ids)
                seen.append(sum(1 for entry_id, _ in pairs if entry_id in ids))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for number in range(0, len(pairs), 2):  # two entries per revision
                changes = [Change.add(faq(i, q)) for i, q in pairs[number : number + 2]]
                store.apply(changes, author="bob")
            wait_for(lambda: "p5" in r.corpus, "the last pair is served")
        finally:
            done.set()
            reader.join(timeout=10)
    assert set(seen) <= {0, 2, 4, 6}  # whole revisions only


def test_a_change_that_cannot_be_served_degrades_and_keeps_the_last_revision(
    store: Store,
) -> None:
    paypay = Contact(
        id="paypay",
        name="PayPay",
        aliases=(),
        hotline="0120-990-640",
        channels=(),
        official_url="https://paypay.ne.jp/help/",
    )
    contacts = ContactDirectory((paypay,))
    with FAQRetriever.from_store(store, model=HashEncoder(), contacts=contacts) as r:
        hotline = contacts.contacts[0].entry_id
        assert hotline in r.corpus and r.follower is not None
        store.apply([Change.add(faq(hotline, "与热线同名的条目"))], author="bob")
        with pytest.raises(WalletFAQError, match="revision 2 .* cannot be served"):
            r.follower.sync()
        assert not r.follower.healthy and "still serving revision 1" in str(
            r.follower.degraded_reason
        )
        assert r.follower.revision == 1 and r.ask("问题1怎么办", k=1)[0].id == "q1"
        store.apply([Change.remove(hotline)], author="bob")  # fixed in the store
        assert r.follower.sync() == 3 and r.follower.healthy


def test_a_failing_store_degrades_then_the_follower_catches_up_by_itself(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's reads fail (as an unreachable store's do) while edits are made: the last
    revision stays served, the reason shows, and the follower catches up when reads work."""
    real_head = store.head
    failing = threading.Event()

    def head() -> int:
        if failing.is_set():
            raise StoreUnavailableError("the store at test failed: connection refused")
        return real_head()

    monkeypatch.setattr(store, "head", head)
    with FAQRetriever.from_store(store, model=HashEncoder(), follow=True, poll_interval=0.05) as r:
        assert r.follower is not None
        failing.set()
        wait_for(lambda: not r.follower.healthy, "the follower is degraded")
        assert "connection refused" in str(r.follower.degraded_reason)
        store.apply([Change.add(faq("meanwhile", "断线期间的问题"))], author="bob")
        assert r.ask("问题2怎么办", k=1)[0].id == "q2"  # still answering
        assert "meanwhile" not in r.corpus and r.follower.status().contact_age_s > 0
        failing.clear()
        wait_for(lambda: "meanwhile" in r.corpus, "the follower caught up")
        assert r.follower.healthy and r.follower.degraded_reason is None


def test_a_store_behind_the_replica_is_served_as_it_is_now(store: Store) -> None:
    """A store restored from an older backup: the replica serves what the store holds."""
    with FAQRetriever.from_store(store, model=HashEncoder()) as r:
        follower = StoreFollower(store, r, [], revision=9)  # claims a later revision
        assert follower.sync() == 1
        assert served_equals_store(r, store)


def test_the_status_says_where_the_replica_stands(store: Store) -> None:
    with FAQRetriever.from_store(store, model=HashEncoder()) as r:
        assert r.follower is not None
        store.apply([Change.remove("q5")], author="bob")
        status = r.follower.status()
        assert (status.revision, status.store_head, status.lag_revisions) == (1, 1, 0)
        assert status.healthy and status.degraded_reason is None and not status.following
        json.dumps(status.to_dict())  # JSON-ready
        r.follower.sync()
        assert r.follower.status().revision == 2


def test_close_stops_following_and_keeps_answering(store: Store) -> None:
    r = FAQRetriever.from_store(store, model=HashEncoder(), follow=True, poll_interval=0.05)
    assert r.follower is not None
    r.close()
    assert not r.follower.following
    store.apply([Change.add(faq("late", "关闭之后的问题"))], author="bob")
    assert "late" not in r.corpus and r.ask("问题3怎么办", k=1)[0].id == "q3"
    with pytest.raises(StoreError, match="was closed"):
        r.follower.start()


def test_a_retriever_not_from_a_store_has_no_follower_and_closes_as_a_no_op(
    tiny_corpus,
) -> None:
    with FAQRetriever.build(tiny_corpus, model=HashEncoder()) as r:
        assert r.follower is None
    r.close()


# --------------------------------------------------------------------------- PostgreSQL only
def test_postgresql_listen_wakes_the_follower_at_each_commit(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    with (
        new_store(url) as store,
        FAQRetriever.from_store(url, model=HashEncoder(), follow=True, poll_interval=600) as r,
    ):  # polling would take 10 minutes: only a notification can wake it
        assert r.follower is not None
        wait_for(lambda: r.follower.listening, "the LISTEN connection is up")
        for number in range(3):
            store.apply([Change.add(faq(f"n{number}", f"通知的问题{number}"))], author="bob")
            wait_for(lambda n=number: f"n{n}" in r.corpus, f"edit {number} served", 10)


def test_a_broken_listen_connection_is_replaced_and_polling_covers_the_gap(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    with (
        new_store(url) as store,
        FAQRetriever.from_store(url, model=HashEncoder(), follow=True, poll_interval=0.2) as r,
    ):
        assert r.follower is not None
        wait_for(lambda: r.follower.listening, "the LISTEN connection is up")
        assert terminate_listeners(url) == 1
        store.apply([Change.add(faq("gap", "连接断开时的问题"))], author="bob")
        wait_for(lambda: "gap" in r.corpus, "the edit made while LISTEN was broken is served")
        wait_for(lambda: r.follower.listening, "the LISTEN connection is back")
        store.apply([Change.remove("gap")], author="bob")
        wait_for(lambda: "gap" not in r.corpus, "the next edit is served")
        assert r.follower.healthy


def test_postgresql_stopped_and_restarted_degrades_then_catches_up(
    outage_cluster: PostgresCluster,
) -> None:
    url = outage_cluster.new_database()
    writer = new_store(url)
    with FAQRetriever.from_store(url, model=HashEncoder(), follow=True, poll_interval=0.2) as r:
        assert r.follower is not None
        wait_for(lambda: r.follower.listening, "the LISTEN connection is up")
        outage_cluster.stop_server()
        try:
            wait_for(lambda: not r.follower.healthy, "the follower is degraded")
            assert r.ask("问题4怎么办", k=1)[0].id == "q4"  # still answering
            assert not r.follower.listening
            with pytest.raises(StoreUnavailableError):
                r.follower.write([Change.remove("q4")], author="carol")
        finally:
            outage_cluster.start()
        writer.apply([Change.add(faq("after", "重启之后的问题"))], author="bob")
        wait_for(lambda: "after" in r.corpus, "the follower caught up after the restart")
        wait_for(lambda: r.follower.healthy and r.follower.listening, "healthy and listening")
        assert "q4" in r.corpus and served_equals_store(r, writer)
    writer.close()
