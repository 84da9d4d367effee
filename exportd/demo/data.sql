-- Demo data for `exportd dev`: orders of three customers, with the values
-- that break naive exporters (quotes, commas, newlines, unicode, NULLs,
-- time zones, exact numerics). Safe to run again: it fills an empty table only.
CREATE SCHEMA IF NOT EXISTS exportd_demo;

CREATE TABLE IF NOT EXISTS exportd_demo.orders (
    id        bigint PRIMARY KEY,
    customer  text NOT NULL,
    placed_at timestamptz NOT NULL,
    status    text NOT NULL,
    total     numeric(12, 2) NOT NULL,
    currency  text NOT NULL,
    items     integer NOT NULL,
    note      text
);

INSERT INTO exportd_demo.orders (id, customer, placed_at, status, total, currency, items, note)
SELECT g,
       (ARRAY['alice', 'bob', 'chloé'])[1 + g % 3],
       timestamptz '2024-01-01 00:00:00+00' + (g * interval '7 minutes'),
       (ARRAY['open', 'shipped', 'delivered', 'returned'])[1 + g % 4],
       round((g % 997) * 1.37 + 0.99, 2),
       (ARRAY['EUR', 'USD', 'JPY'])[1 + g % 3],
       1 + g % 9,
       CASE g % 5
           WHEN 0 THEN NULL
           WHEN 1 THEN 'gift, wrap it'
           WHEN 2 THEN 'say "hi"'
           WHEN 3 THEN E'two\nlines'
           ELSE 'Grüße ☃'
       END
FROM generate_series(1, 30000) AS g
WHERE NOT EXISTS (SELECT 1 FROM exportd_demo.orders);
