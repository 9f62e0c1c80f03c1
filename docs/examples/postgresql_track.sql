-- One tracker's track between two times, oldest first.
SELECT "timestamp", latitude, longitude, altitude, angle, speed
FROM teltonika_records
WHERE imei = '356307042441013'
  AND "timestamp" >= '2019-06-10 10:00Z'
  AND "timestamp" <  '2019-06-10 11:00Z'
ORDER BY "timestamp";
