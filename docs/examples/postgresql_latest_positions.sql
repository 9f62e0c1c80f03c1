-- The latest position of each tracker.
SELECT DISTINCT ON (imei)
    imei, "timestamp", latitude, longitude, speed
FROM teltonika_records
ORDER BY imei, "timestamp" DESC;
