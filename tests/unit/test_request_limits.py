"""The rate limiter's buckets, persisted queries' registration, the manifest,
and the statement timeout's connection options."""

from __future__ import annotations

import json

import pytest

from api.hardening import (
    REMEMBERED_DOCUMENTS,
    RateLimiter,
    TrustedDocuments,
    TrustedDocumentsError,
    load_manifest,
    retry_after,
    sha256_hex,
    statement_timeout_kwargs,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") is None  # another key has a bucket of its own
    clock.now = 0.5
    assert limiter.take("a") is None
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now = 100
    assert [limiter.take("a") for _ in range(4)][-1] is not None  # never above the burst


def test_a_refused_request_costs_nothing():
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.take("a") is None
    for _ in range(10):
        assert limiter.take("a") is not None
    clock.now = 1
    assert limiter.take("a") is None


def test_a_rate_of_zero_limits_nothing():
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.take("a") is None for _ in range(1000))


def test_retry_after_is_whole_seconds_of_at_least_one():
    assert retry_after(0.01) == "1"
    assert retry_after(1.2) == "2"


QUERY = "query Q { __typename }"
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(QUERY)}}


def test_outside_only_mode_a_hash_sent_with_its_text_is_remembered():
    documents = TrustedDocuments({}, only=False)
    assert documents.document(None, PERSISTED).message == "PersistedQueryNotFound"
    assert documents.document(QUERY, PERSISTED) == QUERY
    assert documents.document(None, PERSISTED) == QUERY


def test_remembered_documents_are_bounded():
    documents = TrustedDocuments({}, only=False)
    texts = [f"query Q{n} {{ __typename }}" for n in range(REMEMBERED_DOCUMENTS + 1)]
    for text in texts:
        ext = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(text)}}
        assert documents.document(text, ext) == text
    assert len(documents.registered) == REMEMBERED_DOCUMENTS
    oldest = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(texts[0])}}
    assert documents.document(None, oldest).message == "PersistedQueryNotFound"


def test_only_mode_accepts_the_manifest_and_nothing_else():
    documents = TrustedDocuments({sha256_hex(QUERY): QUERY}, only=True)
    assert documents.document(QUERY, None) == QUERY
    assert documents.document(None, PERSISTED) == QUERY
    other = "{ __typename }"
    refused = documents.document(other, None)
    assert refused.extensions == {"code": "PERSISTED_QUERY_NOT_IN_LIST"}
    ext = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(other)}}
    assert documents.document(other, ext).extensions == {
        "code": "PERSISTED_QUERY_NOT_IN_LIST"
    }
    assert documents.document(None, ext).message == "PersistedQueryNotFound"


def test_a_manifest_whose_hash_does_not_match_its_document_is_refused(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({sha256_hex(QUERY).upper(): QUERY}))
    assert load_manifest(good) == {sha256_hex(QUERY): QUERY}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({sha256_hex(QUERY): QUERY + " "}))
    with pytest.raises(TrustedDocumentsError, match="is not the SHA-256 of its document"):
        load_manifest(bad)


def test_the_statement_timeout_keeps_the_urls_options():
    url = "postgresql://u@h/db?options=-c%20search_path%3Dcrm"
    assert statement_timeout_kwargs(url, 2.5) == {
        "options": "-c search_path=crm -c statement_timeout=2500"
    }
    assert statement_timeout_kwargs("postgresql://u@h/db", 0) == {}
