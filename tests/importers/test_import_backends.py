"""The same imports on every store backend (SQLite and the real PostgreSQL server)."""

from __future__ import annotations

from attune.importers import run_import


def test_every_kind_imports_and_reimports_on_each_backend(make_runtime, write):
    runtime = make_runtime()
    items = write("items.csv", "item_id,title,genres\ni1,First,a|b\ni2,Other,c\ni1,Second,a\n")
    users = write("users.csv", "user_id,age,country\nu1,30,DE\nu2,,FR\n")
    ratings = write(
        "r.csv",
        "user_id,item_id,timestamp,value\nu1,i1,1704067200,4\nu1,i2,1704067300,\nu2,i1,bad,3\n",
    )
    events = write(
        "e.jsonl", '{"type": "click", "anonymous_id": "d1", "item_id": "i2", "timestamp": 1704067400}\n'
    )

    # A repeated id inside one upsert statement is refused by PostgreSQL unless the importer folds it.
    assert run_import(runtime, "items", items).items_upserted == 2
    assert runtime.catalog.get("i1").attributes == {"title": "Second", "genres": ["a"]}
    first = [run_import(runtime, kind, path) for kind, path in (("users", users), ("interactions", ratings))]
    assert [(r.accepted, r.duplicates, r.rejected) for r in first] == [(2, 0, 0), (2, 0, 1)]
    assert first[1].rejections[0].line == 4
    assert run_import(runtime, "events", events).accepted == 1
    assert runtime.log.count() == 5

    again = [run_import(runtime, kind, path) for kind, path in (("users", users), ("interactions", ratings))]
    assert [(r.accepted, r.duplicates, r.rejected) for r in again] == [(0, 2, 0), (0, 2, 1)]
    assert runtime.log.count() == 5
    profile = runtime.profiles.get("u1")
    assert profile.traits == {"age": 30, "country": "DE"}
    assert profile.event_counts == {"identify": 1, "rating": 1, "view": 1}
