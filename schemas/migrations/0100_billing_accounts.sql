-- Billing master data: customers, service points, billing groups, tariffs in versions,
-- contracts, meter installations over time, customer-submitted readings, NBP reference rates.
-- Money is integer grosze; billing dates are Europe/Warsaw calendar dates; instants are
-- timestamptz; date ranges include both ends (valid_to, removed_on), except that a meter
-- replaced on a day may be removed and installed that same day. Overlap rules use GiST exclusion over built-in range types (no btree_gist,
-- which the embedded PostgreSQL lacks): a key k is turned into the range [k, k].

-- mode: all
CREATE FUNCTION nip_valid(nip text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT nip ~ '^[0-9]{10}$'
       AND (SELECT sum(substr(nip, i::int, 1)::int * w) % 11
            FROM unnest(ARRAY[6, 5, 7, 2, 3, 4, 5, 6, 7]) WITH ORDINALITY AS t(w, i))
           = substr(nip, 10, 1)::int
$$;

CREATE TABLE customers (
    customer_id bigserial PRIMARY KEY,
    customer_no text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('person', 'business')),
    name        text NOT NULL CHECK (name <> ''),
    nip         text CHECK (nip IS NULL OR nip_valid(nip)),
    email       text,
    phone       text,
    address     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'person' OR nip IS NOT NULL)
);

CREATE TABLE service_points (
    service_point_id bigserial PRIMARY KEY,
    address          text NOT NULL CHECK (address <> ''),
    postal_code      text NOT NULL DEFAULT '',
    city             text NOT NULL DEFAULT ''
);

CREATE TABLE billing_groups (
    group_code text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    settle_day smallint NOT NULL DEFAULT 1 CHECK (settle_day BETWEEN 1 AND 28)
);

CREATE TABLE tariffs (
    tariff_id    bigserial PRIMARY KEY,
    tariff_group text NOT NULL UNIQUE,
    name         text NOT NULL DEFAULT '',
    norm_m3_per_day numeric(10, 4) NOT NULL DEFAULT 0.1 CHECK (norm_m3_per_day >= 0)
);

CREATE TABLE tariff_versions (
    tariff_id              bigint NOT NULL REFERENCES tariffs,
    valid_from             date NOT NULL,
    valid_to               date CHECK (valid_to IS NULL OR valid_to >= valid_from),
    water_price_per_m3     numeric(12, 4) NOT NULL CHECK (water_price_per_m3 >= 0),
    sewage_price_per_m3    numeric(12, 4) NOT NULL CHECK (sewage_price_per_m3 >= 0),
    subscription_gr_per_month bigint NOT NULL CHECK (subscription_gr_per_month >= 0),
    vat_rate               numeric(5, 4) NOT NULL DEFAULT 0.08 CHECK (vat_rate BETWEEN 0 AND 1),
    PRIMARY KEY (tariff_id, valid_from),
    CONSTRAINT tariff_versions_no_overlap EXCLUDE USING gist (
        int8range(tariff_id, tariff_id, '[]') WITH &&,
        daterange(valid_from, valid_to, '[]') WITH &&)
);

CREATE TABLE contracts (
    contract_id      bigserial PRIMARY KEY,
    contract_no      text NOT NULL UNIQUE,
    customer_id      bigint NOT NULL REFERENCES customers,
    service_point_id bigint NOT NULL REFERENCES service_points,
    water            boolean NOT NULL DEFAULT true,
    sewage           boolean NOT NULL DEFAULT true,
    valid_from       date NOT NULL,
    valid_to         date CHECK (valid_to IS NULL OR valid_to >= valid_from),
    group_code       text NOT NULL REFERENCES billing_groups,
    billing_period   text NOT NULL DEFAULT 'monthly'
                     CHECK (billing_period IN ('monthly', 'bimonthly', 'quarterly')),
    tariff_id        bigint NOT NULL REFERENCES tariffs,
    CHECK (water OR sewage),
    CONSTRAINT contracts_one_per_point EXCLUDE USING gist (
        int8range(service_point_id, service_point_id, '[]') WITH &&,
        daterange(valid_from, valid_to, '[]') WITH &&)
);
CREATE INDEX contracts_customer ON contracts (customer_id);
CREATE INDEX contracts_group ON contracts (group_code, billing_period);

CREATE TABLE meter_installations (
    installation_id  bigserial PRIMARY KEY,
    meter_id         text NOT NULL REFERENCES meters,
    service_point_id bigint NOT NULL REFERENCES service_points,
    role             text NOT NULL DEFAULT 'main' CHECK (role IN ('main', 'garden')),
    installed_on     date NOT NULL,
    removed_on       date CHECK (removed_on IS NULL OR removed_on >= installed_on),
    initial_m3       numeric NOT NULL DEFAULT 0 CHECK (initial_m3 >= 0),
    final_m3         numeric CHECK (final_m3 IS NULL OR final_m3 >= 0),
    CHECK ((removed_on IS NULL) = (final_m3 IS NULL)),
    CONSTRAINT meter_installations_one_per_role EXCLUDE USING gist (
        int8range(service_point_id, service_point_id, '[]') WITH &&,
        int4range(CASE role WHEN 'main' THEN 1 ELSE 2 END,
                  CASE role WHEN 'main' THEN 1 ELSE 2 END, '[]') WITH &&,
        daterange(installed_on, removed_on) WITH &&)
);
CREATE INDEX meter_installations_point ON meter_installations (service_point_id, installed_on);
CREATE INDEX meter_installations_meter ON meter_installations (meter_id);

-- Readings a customer submits (iBOK) or an inspector takes; remote readings stay in
-- `readings`. A refused reading is never stored: the caller gets the reason.
CREATE TABLE customer_readings (
    reading_id   bigserial PRIMARY KEY,
    contract_id  bigint NOT NULL REFERENCES contracts,
    meter_id     text NOT NULL REFERENCES meters,
    read_on      date NOT NULL,
    value_m3     numeric NOT NULL CHECK (value_m3 >= 0),
    source       text NOT NULL DEFAULT 'customer' CHECK (source IN ('customer', 'inspector')),
    submitted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meter_id, read_on, source)
);
CREATE INDEX customer_readings_contract ON customer_readings (contract_id, read_on);

-- The NBP reference rate in percent from valid_from on; statutory interest for delay adds
-- 5.5 points for consumers and 10 points for businesses.
CREATE TABLE reference_rates (
    valid_from date PRIMARY KEY,
    rate_pct   numeric(6, 3) NOT NULL CHECK (rate_pct >= 0)
);
