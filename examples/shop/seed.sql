-- Sample data for the shop schema, valid after the last migration.
-- Runs unchanged on SQLite and PostgreSQL: ids come from the sequences /
-- AUTOINCREMENT, foreign keys are looked up by the user's email.

INSERT INTO users (email, name, first_name, last_name, clerk_id, created_at)
VALUES
    ('alice@example.com', 'Alice Martin', 'Alice', 'Martin', 'user_2alice', '2026-10-01 10:00:00'),
    ('bob@example.com', 'Bob Chen', 'Bob', 'Chen', 'user_2bob', '2026-10-02 11:30:00'),
    ('carol@example.com', 'Carol Diaz', NULL, NULL, NULL, '2026-10-03 09:15:00');

INSERT INTO subscriptions (user_id, plan, status, created_at, canceled_at)
VALUES
    ((SELECT id FROM users WHERE email = 'alice@example.com'),
     'pro', 'active', '2026-10-01 10:05:00', NULL),
    ((SELECT id FROM users WHERE email = 'bob@example.com'),
     'starter', 'past_due', '2026-10-02 11:35:00', NULL),
    ((SELECT id FROM users WHERE email = 'carol@example.com'),
     'team', 'canceled', '2026-10-03 09:20:00', '2026-11-03 09:20:00');

INSERT INTO invoices (subscription_id, amount_cents, currency, issued_at, paid_at)
VALUES
    ((SELECT s.id FROM subscriptions s JOIN users u ON u.id = s.user_id
      WHERE u.email = 'alice@example.com'),
     4900, 'usd', '2026-10-01 10:05:00', '2026-10-01 10:06:00'),
    ((SELECT s.id FROM subscriptions s JOIN users u ON u.id = s.user_id
      WHERE u.email = 'alice@example.com'),
     4900, 'usd', '2026-11-01 10:05:00', NULL),
    ((SELECT s.id FROM subscriptions s JOIN users u ON u.id = s.user_id
      WHERE u.email = 'bob@example.com'),
     1900, 'eur', '2026-11-02 11:35:00', NULL),
    ((SELECT s.id FROM subscriptions s JOIN users u ON u.id = s.user_id
      WHERE u.email = 'carol@example.com'),
     9900, 'usd', '2026-10-03 09:20:00', '2026-10-04 08:00:00');
