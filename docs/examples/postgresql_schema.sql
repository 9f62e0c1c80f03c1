-- The tables the postgresql sink creates when they are missing, for the
-- default ?table=teltonika_records. Each column is the key of the record
-- JSON of the same name (docs/records.rst).
CREATE TABLE teltonika_records (
    id text PRIMARY KEY,
    imei text NOT NULL,
    "timestamp" timestamptz NOT NULL,       -- the device's time
    received_at timestamptz NOT NULL,       -- the gateway's
    latitude double precision NOT NULL,     -- degrees
    longitude double precision NOT NULL,
    altitude integer NOT NULL,              -- metres
    angle integer NOT NULL,                 -- degrees from north
    satellites integer NOT NULL,
    speed integer NOT NULL,                 -- km/h
    priority smallint NOT NULL,
    event_id integer NOT NULL,
    codec text NOT NULL,                    -- 8, 8E or 16
    generation_type smallint,               -- Codec 16 only
    io jsonb NOT NULL,                      -- raw: {"66": 12682, ...}
    attributes jsonb                        -- named, with --models only
);

-- Latest position per IMEI, and an IMEI's track between two times.
CREATE INDEX teltonika_records_imei_timestamp
    ON teltonika_records (imei, "timestamp" DESC);

-- Frames with a valid CRC that could not be decoded, kept byte for byte.
CREATE TABLE teltonika_records_unparsed (
    id text PRIMARY KEY,
    imei text NOT NULL,
    received_at timestamptz NOT NULL,
    error text NOT NULL,
    raw bytea NOT NULL
);

-- The final outcome of each command sent to a tracker.
CREATE TABLE teltonika_records_command_results (
    id text PRIMARY KEY,
    imei text NOT NULL,
    received_at timestamptz NOT NULL,
    command_result jsonb NOT NULL
);
