"""Which spans are recorded, and that tracing is off unless asked for."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from libs.common import tracing
from libs.common.config import CommonSettings
from libs.common.tracing import WorkOnly

TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C


@pytest.fixture(autouse=True)
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler as in a process that traces (a stopped one records nothing)."""
    monkeypatch.setattr(tracing, "_enabled", True)


def test_a_stopped_process_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_enabled", False)
    assert WorkOnly().should_sample(None, TRACE_ID, "GET /x", SpanKind.SERVER).decision == Decision.DROP


def _under(sampled: bool) -> object:
    parent = SpanContext(
        trace_id=TRACE_ID,
        span_id=0x1234,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def test_tracing_is_off_unless_asked_for() -> None:
    assert CommonSettings(_env_file=None).trace_mode == "off"
    assert CommonSettings(_env_file=None, otel_exporter_otlp_endpoint="http://c:4318").trace_mode == "otlp"
    assert CommonSettings(_env_file=None, traces="console").trace_mode == "console"
    both = CommonSettings(_env_file=None, traces="off", otel_exporter_otlp_endpoint="http://c:4318")
    assert both.trace_mode == "off"


def test_work_starts_a_trace_and_a_poll_does_not() -> None:
    sampler = WorkOnly()
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER):
        assert sampler.should_sample(None, TRACE_ID, "x", kind).decision == Decision.RECORD_AND_SAMPLE
    for kind in (SpanKind.CLIENT, SpanKind.INTERNAL):  # the relay's poll, the feed reader's XREAD
        assert sampler.should_sample(None, TRACE_ID, "SELECT", kind).decision == Decision.DROP


def test_a_child_follows_its_parent_and_keeps_its_attributes() -> None:
    sampler = WorkOnly(ratio=0.0)  # the ratio decides only where a trace starts
    kept = sampler.should_sample(_under(True), TRACE_ID, "SELECT", SpanKind.CLIENT, {"shop.part": "orders"})
    assert kept.decision == Decision.RECORD_AND_SAMPLE and kept.attributes == {"shop.part": "orders"}
    dropped = WorkOnly().should_sample(_under(False), TRACE_ID, "order.created process", SpanKind.CONSUMER)
    assert dropped.decision == Decision.DROP


def test_transaction_brackets_are_not_recorded() -> None:
    for name in ("BEGIN;", "COMMIT;", "ROLLBACK;"):
        assert (
            WorkOnly().should_sample(_under(True), TRACE_ID, name, SpanKind.CLIENT).decision == Decision.DROP
        )


def test_the_ratio_samples_that_share_of_new_traces() -> None:
    sampler = WorkOnly(ratio=0.25)
    ids = range(1, 2**64, 2**64 // 4000)
    recorded = sum(
        sampler.should_sample(None, i, "GET /x", SpanKind.SERVER).decision == Decision.RECORD_AND_SAMPLE
        for i in ids
    )
    assert 0.2 < recorded / len(ids) < 0.3
