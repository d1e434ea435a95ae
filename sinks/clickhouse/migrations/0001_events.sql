-- One row per accepted event (SPEC §6). Re-delivered and retried copies of
-- an event share event_id and collapse on merge; documented queries read
-- with FINAL. The partition and sort keys use only values a retried copy
-- keeps unchanged (type, ts as sent, event_id): a retry gets a new
-- received_at and hence possibly a new event_time, so event_time cannot
-- be part of the identity. See docs/analysts.md.
CREATE TABLE IF NOT EXISTS events
(
    event_id         String,
    type             String,
    user_id          String,
    device_id        String,
    session_id       String,
    country          String,
    event_time       DateTime,
    event_time_ms    Int64,
    ts               DateTime,
    ts_ms            Int64,
    sent_at          Nullable(DateTime),
    sent_at_ms       Nullable(Int64),
    received_at      DateTime,
    received_at_ms   Int64,
    clock_offset_ms  Nullable(Int64),
    source           String,
    key_id           String,
    edge_country     String,
    quest_id         String,
    drop_id          String,
    creator_id       String,
    claim_id         String,
    reason           String,
    auction_id       String,
    placement        String,
    bidder_id        String,
    outcome          String,
    offer_id         String,
    order_id         String,
    payout_id        String,
    currency         String,
    title            String,
    amount_micros    Nullable(Int64),
    price_micros     Nullable(Int64),
    floor_micros     Nullable(Int64),
    clearing_micros  Nullable(Int64),
    latency_ms       Nullable(Int64),
    duration_ms      Nullable(Int64),
    min_duration_ms  Nullable(Int64),
    max_duration_ms  Nullable(Int64),
    inventory        Nullable(Int64),
    starts_at_ms     Nullable(Int64),
    ends_at_ms       Nullable(Int64),
    extra            String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (type, toStartOfHour(ts), event_id);

-- One row per rejected event or request. id is a 64-bit hash of the
-- dead-letter record value: a re-delivered record collapses, while two
-- rejections of a retried request (different received_at) stay two rows.
CREATE TABLE IF NOT EXISTS rejected_events
(
    id               UInt64,
    received_at      DateTime,
    received_at_ms   Int64,
    kind             String,
    reason           String,
    event_id         String,
    batch_index      Int32,
    raw              String,
    raw_truncated    UInt8,
    source           String,
    key_id           String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (toDate(received_at), kind, id);
