-- quest_conversions, version 2 (owned by processors/). A conversion's row is
-- rewritten, with a higher version, when a completion that arrives late
-- (within the allowed lateness) re-attributes it: its quest_id and
-- latency_ms may change, so the identity is the conversion alone
-- (conversion_time, event_id) and ReplacingMergeTree(version) keeps the
-- current attribution. The table of 0100 keyed rows by quest_id and could
-- keep a stale attribution; it is replaced (it held only derived rows, which
-- the processors write again on a replay).
DROP TABLE IF EXISTS quest_conversions;

CREATE TABLE IF NOT EXISTS quest_conversions
(
    event_id            String,
    order_id            String,
    user_id             String,
    quest_id            String,
    drop_id             String,
    creator_id          String,
    conversion_time     DateTime,
    conversion_time_ms  Int64,
    completion_time     DateTime,
    completion_time_ms  Int64,
    latency_ms          Int64,
    amount_micros       Int64,
    currency            String,
    version             UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(conversion_time)
ORDER BY (conversion_time, event_id);
