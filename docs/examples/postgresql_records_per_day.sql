-- How many records each tracker sent per day (UTC), newest day first.
SELECT imei,
       date_trunc('day', "timestamp" AT TIME ZONE 'UTC')::date AS day,
       count(*) AS records
FROM teltonika_records
GROUP BY imei, day
ORDER BY day DESC, imei;
