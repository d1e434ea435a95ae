-- The window tables of the processors (SPEC §5, §6; docs/processors.md).
-- One row per identity (window or drop × keys × scope); a row is written
-- again, with a higher version, each time new information reaches it, and a
-- replayed or retried row carries the same version: ReplacingMergeTree(version)
-- keeps the most informed row; read with FINAL (or argMax(col, version)).
-- Ratios are ALIAS columns computed from the stored counts on read: NULL
-- when the denominator is zero, never NaN or Inf. Owned by processors/.

CREATE TABLE IF NOT EXISTS quest_completion
(
    window_start     DateTime,
    window_end       DateTime,
    quest_id         String,
    scope            String,
    starts           Int64,
    completions      Int64,
    abandons         Int64,
    version          UInt64,
    completion_rate  Nullable(Float64) ALIAS if(starts = 0, NULL, completions / starts)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (scope, quest_id, window_start);

CREATE TABLE IF NOT EXISTS conversion_latency
(
    window_start  DateTime,
    window_end    DateTime,
    quest_id      String,
    scope         String,
    conversions   Int64,
    sum_ms        Int64,
    p50_ms        Int64,
    p90_ms        Int64,
    p99_ms        Int64,
    max_ms        Int64,
    hdr           String,
    version       UInt64,
    mean_ms       Nullable(Float64) ALIAS if(conversions = 0, NULL, sum_ms / conversions)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (scope, quest_id, window_start);

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

CREATE TABLE IF NOT EXISTS creator_lift
(
    drop_id             String,
    creator_id          String,
    scope               String,
    updated_at          DateTime,
    final               UInt8,
    exposed_users       Int64,
    exposed_converters  Int64,
    control_users       Int64,
    control_converters  Int64,
    version             UInt64,
    lift                Nullable(Float64) ALIAS if(exposed_users = 0 OR control_users = 0 OR control_converters = 0, NULL,
                            (exposed_converters / exposed_users) / (control_converters / control_users) - 1),
    lift_ci_low         Nullable(Float64) ALIAS if(exposed_users = 0 OR control_users = 0 OR control_converters = 0 OR exposed_converters = 0, NULL,
                            exp(log((exposed_converters / exposed_users) / (control_converters / control_users))
                                - 1.96 * sqrt(greatest(1 / exposed_converters - 1 / exposed_users + 1 / control_converters - 1 / control_users, 0))) - 1),
    lift_ci_high        Nullable(Float64) ALIAS if(exposed_users = 0 OR control_users = 0 OR control_converters = 0 OR exposed_converters = 0, NULL,
                            exp(log((exposed_converters / exposed_users) / (control_converters / control_users))
                                + 1.96 * sqrt(greatest(1 / exposed_converters - 1 / exposed_users + 1 / control_converters - 1 / control_users, 0))) - 1),
    chance_to_win       Nullable(Float64) ALIAS if(exposed_users = 0 OR control_users = 0 OR control_converters = 0 OR exposed_converters = 0, NULL,
                            if(1 / exposed_converters - 1 / exposed_users + 1 / control_converters - 1 / control_users > 0,
                               0.5 * erfc(-(log((exposed_converters / exposed_users) / (control_converters / control_users))
                                   / sqrt(1 / exposed_converters - 1 / exposed_users + 1 / control_converters - 1 / control_users)) / sqrt(2)),
                               multiIf(exposed_converters * control_users > control_converters * exposed_users, 1,
                                       exposed_converters * control_users < control_converters * exposed_users, 0, 0.5)))
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(updated_at)
ORDER BY (scope, drop_id, updated_at, final);

CREATE TABLE IF NOT EXISTS offer_yield
(
    window_start        DateTime,
    window_end          DateTime,
    placement           String,
    bidder_id           String,
    scope               String,
    auctions            Int64,
    bids                Int64,
    no_bids             Int64,
    timeouts            Int64,
    wins                Int64,
    impressions         Int64,
    clicks              Int64,
    revenue_micros      Int64,
    bid_latency_p50_ms  Nullable(Int64),
    bid_latency_p99_ms  Nullable(Int64),
    version             UInt64,
    fill_rate           Nullable(Float64) ALIAS if(auctions = 0, NULL, impressions / auctions),
    ecpm                Nullable(Float64) ALIAS if(impressions = 0, NULL, revenue_micros / 1000000 / impressions * 1000),
    rpm                 Nullable(Float64) ALIAS if(auctions = 0, NULL, revenue_micros / 1000000 / auctions * 1000),
    win_rate            Nullable(Float64) ALIAS if(bids = 0, NULL, wins / bids)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (scope, placement, bidder_id, window_start);

CREATE TABLE IF NOT EXISTS bidstream_integrity
(
    window_start     DateTime,
    window_end       DateTime,
    placement        String,
    kind             String,
    scope            String,
    violations       Int64,
    auctions         Int64,
    clean_auctions   Int64,
    version          UInt64,
    integrity_ratio  Nullable(Float64) ALIAS if(auctions = 0, NULL, clean_auctions / auctions)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (scope, placement, kind, window_start);

CREATE TABLE IF NOT EXISTS bot_signals
(
    window_start  DateTime,
    window_end    DateTime,
    entity_type   String,
    entity_id     String,
    events        Int64,
    score         Float64,
    reasons       String,
    flagged       UInt8,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (entity_type, entity_id, window_start);

CREATE TABLE IF NOT EXISTS window_late_events
(
    event_id       String,
    type           String,
    user_id        String,
    event_time     DateTime,
    event_time_ms  Int64,
    watermark_ms   Int64,
    processor      String,
    missed         Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (processor, event_time, event_id);
