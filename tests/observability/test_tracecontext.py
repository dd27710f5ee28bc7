from gateway.observability.tracecontext import _TRACEPARENT, from_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_valid_traceparent_is_continued_with_a_new_span():
    tc = from_headers(f"00-{TRACE}-{PARENT}-01".encode(), b"vendor=1")
    assert (tc.trace_id, tc.parent_id, tc.flags, tc.state) == (TRACE, PARENT, "01", b"vendor=1")
    assert len(tc.span_id) == 16 and tc.span_id != PARENT
    assert tc.traceparent() == f"00-{TRACE}-{tc.span_id}-01".encode()


def test_missing_traceparent_starts_a_trace():
    tc = from_headers(None, b"vendor=1")
    assert len(tc.trace_id) == 32 and tc.parent_id is None and tc.state is None
    assert len(tc.span_id) == 16 and tc.flags == "01"
    assert _TRACEPARENT.fullmatch(tc.traceparent())


def test_new_traces_have_ids_of_their_own():
    started = [from_headers(None, None) for _ in range(1000)]
    ids = {tc.trace_id for tc in started} | {tc.span_id for tc in started}
    assert len(ids) == 2000


def test_invalid_traceparents_start_a_new_trace():
    bad = [
        f"ff-{TRACE}-{PARENT}-01",  # forbidden version
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper-case hex
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has no extra fields
        "garbage",
    ]
    for value in bad:
        tc = from_headers(value.encode(), b"vendor=1")
        assert tc.trace_id != TRACE and tc.parent_id is None, value
        assert tc.state is None


def test_future_version_with_extra_fields_is_accepted():
    tc = from_headers(f"01-{TRACE}-{PARENT}-01-whatever".encode(), None)
    assert tc.trace_id == TRACE and tc.parent_id == PARENT


def test_oversized_tracestate_is_dropped():
    tc = from_headers(f"00-{TRACE}-{PARENT}-00".encode(), b"a=" + b"x" * 600)
    assert tc.state is None and tc.flags == "00"
