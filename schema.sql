-- Example customer directory for Aurora DSQL.
--
-- DSQL runs one DDL statement per transaction and no DDL mixed with DML, so
-- each statement below stands alone; run them in autocommit mode. DSQL has
-- no foreign keys, so addresses.customer_id is checked by the application.
-- Secondary indexes are built with CREATE INDEX ASYNC, which returns a job id
-- at once and builds the index in the background.

CREATE TABLE IF NOT EXISTS customers (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    first_name  VARCHAR(100) NOT NULL,
    last_name   VARCHAR(100) NOT NULL,
    email       VARCHAR(320) NOT NULL UNIQUE,
    active      BOOLEAN NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS addresses (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id  UUID NOT NULL,
    street       VARCHAR(200) NOT NULL,
    city         VARCHAR(100) NOT NULL,
    state        VARCHAR(100),
    postal_code  VARCHAR(20),
    country      VARCHAR(2) NOT NULL,
    is_default   BOOLEAN NOT NULL DEFAULT false
);

CREATE INDEX ASYNC IF NOT EXISTS customers_first_name_idx ON customers (first_name);

CREATE INDEX ASYNC IF NOT EXISTS customers_last_name_idx ON customers (last_name);

CREATE INDEX ASYNC IF NOT EXISTS addresses_city_idx ON addresses (city);
