-- The flagship's tables, as the original system defined them (seed-contract.md), valid in
-- PostgreSQL and SQLite. transactions gains total_amount_usd; payment_alerts is new.

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

CREATE TABLE IF NOT EXISTS sales_per_category (
    transaction_date DATE,
    category VARCHAR(255),
    total_sales DOUBLE PRECISION,
    PRIMARY KEY (transaction_date, category)
);

CREATE TABLE IF NOT EXISTS sales_per_day (
    transaction_date DATE PRIMARY KEY,
    total_sales DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS sales_per_month (
    month INTEGER,
    year INTEGER,
    total_sales DOUBLE PRECISION,
    PRIMARY KEY (year, month)
);

CREATE TABLE IF NOT EXISTS payment_alerts (
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    payment_method VARCHAR(255),
    failed_count INTEGER,
    PRIMARY KEY (window_start, payment_method)
);
