-- The flagship's tables for several processes in one Kafka consumer group
-- (pipelines/real-stack.toml), valid in PostgreSQL and SQLite.
--
-- Each stateful transform keeps its state per Kafka source partition, and each partition is
-- owned by one process at a time. So the aggregates write PARTIAL rows: one per group key and
-- source partition, in the *_partials tables. The `sql` sink fills `source_partition` itself
-- (`partition_column = "source_partition"`): the number of the partition the row's state
-- belongs to (0 for a source without partitions). A process writes only the partitions it
-- owns, so the absolute upserts of two processes never touch the same row.
--
-- Views with the names and columns of migrations/0001_ecommerce_tables.sql sum the partials,
-- so the flagship's tables are queried the same way in both modes. payment_alerts applies
-- the flagship's threshold (failed_count > 4) to the sum over all partitions, not to each
-- partition's count.
--
-- transactions is the flagship's table unchanged: each transaction is on one partition, so
-- it has one writer.
--
-- Use a database of its own: migrations/ and migrations/scale-out both have a version 1, so
-- sqlx refuses one on a database that has the other (and the view names are the embedded
-- mode's table names).

CREATE TABLE IF NOT EXISTS transactions (
    transaction_id VARCHAR(255) PRIMARY KEY,
    product_id VARCHAR(255),
    product_name VARCHAR(255),
    product_category VARCHAR(255),
    product_price DOUBLE PRECISION,
    product_quantity INTEGER,
    product_brand VARCHAR(255),
    currency VARCHAR(255),
    customer_id VARCHAR(255),
    transaction_date TIMESTAMP,
    payment_method VARCHAR(255),
    payment_status VARCHAR(255),
    total_amount DOUBLE PRECISION,
    total_amount_usd DOUBLE PRECISION
);

-- Partials: one row per group key and source partition. source_partition is NOT NULL so that
-- SQLite, which allows NULL in a composite primary key, refuses a row without it instead of
-- inserting a duplicate (PostgreSQL implies NOT NULL for primary key columns).

CREATE TABLE IF NOT EXISTS sales_per_category_partials (
    transaction_date DATE,
    category VARCHAR(255),
    source_partition INTEGER NOT NULL,
    total_sales DOUBLE PRECISION,
    PRIMARY KEY (transaction_date, category, source_partition)
);

CREATE TABLE IF NOT EXISTS sales_per_day_partials (
    transaction_date DATE,
    source_partition INTEGER NOT NULL,
    total_sales DOUBLE PRECISION,
    PRIMARY KEY (transaction_date, source_partition)
);

CREATE TABLE IF NOT EXISTS sales_per_month_partials (
    month INTEGER,
    year INTEGER,
    source_partition INTEGER NOT NULL,
    total_sales DOUBLE PRECISION,
    PRIMARY KEY (year, month, source_partition)
);

-- Every minute's count of failed payments per method and partition (the window
-- failures_per_minute, before any threshold).
CREATE TABLE IF NOT EXISTS failures_per_minute_partials (
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    payment_method VARCHAR(255),
    source_partition INTEGER NOT NULL,
    failed_count INTEGER,
    PRIMARY KEY (window_start, payment_method, source_partition)
);

-- The flagship's tables, as views over the partials (same names, same columns, same order).
-- SUM of an INTEGER is an integer in SQLite and a bigint in PostgreSQL.

CREATE VIEW sales_per_category AS
SELECT transaction_date, category, SUM(total_sales) AS total_sales
FROM sales_per_category_partials
GROUP BY transaction_date, category;

CREATE VIEW sales_per_day AS
SELECT transaction_date, SUM(total_sales) AS total_sales
FROM sales_per_day_partials
GROUP BY transaction_date;

CREATE VIEW sales_per_month AS
SELECT month, year, SUM(total_sales) AS total_sales
FROM sales_per_month_partials
GROUP BY year, month;

-- The threshold of pipelines/ecommerce.toml (`failed_count > 4`), over the whole topic.
CREATE VIEW payment_alerts AS
SELECT window_start, window_end, payment_method, SUM(failed_count) AS failed_count
FROM failures_per_minute_partials
GROUP BY window_start, window_end, payment_method
HAVING SUM(failed_count) > 4;
