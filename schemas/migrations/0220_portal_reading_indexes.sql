-- Indexes the customer pages need at full size (100,000 customers, a year of readings):
-- a meter's own readings are looked up by meter (last reading on the dashboard and the
-- readings page, the meter's history), not only by contract.

-- mode: all
CREATE INDEX customer_readings_meter ON customer_readings (meter_id, read_on);
