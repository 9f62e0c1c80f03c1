-- The records table partitioned by month, for large fleets: old months
-- are detached or dropped whole. Create it before the gateway starts; the
-- sink then creates only the other two tables (or none, with declare=false).
CREATE TABLE teltonika_records (
    id text NOT NULL,
    imei text NOT NULL,
    "timestamp" timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    altitude integer NOT NULL,
    angle integer NOT NULL,
    satellites integer NOT NULL,
    speed integer NOT NULL,
    priority smallint NOT NULL,
    event_id integer NOT NULL,
    codec text NOT NULL,
    generation_type smallint,
    io jsonb NOT NULL,
    attributes jsonb,
    -- A partitioned table's key must hold the partition key. The id holds
    -- the record's time, so (id, "timestamp") is as unique as id alone.
    PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");

CREATE INDEX teltonika_records_imei_timestamp
    ON teltonika_records (imei, "timestamp" DESC);

-- One partition per month, created ahead (by cron, or pg_partman) ...
CREATE TABLE teltonika_records_2019_06 PARTITION OF teltonika_records
    FOR VALUES FROM ('2019-06-01 00:00Z') TO ('2019-07-01 00:00Z');
CREATE TABLE teltonika_records_2019_07 PARTITION OF teltonika_records
    FOR VALUES FROM ('2019-07-01 00:00Z') TO ('2019-08-01 00:00Z');

-- ... and a default one for the rest, such as the 2004-01-01 of trackers
-- whose clock is not set yet: without it, such a record fails its packet.
CREATE TABLE teltonika_records_default PARTITION OF teltonika_records DEFAULT;
