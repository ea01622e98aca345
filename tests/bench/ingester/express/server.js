// server.js: the Express comparison of tests/bench/ingester/run.sh. A plain
// Express app that verifies each Stripe webhook with the official `stripe`
// package (stripe.webhooks.constructEvent: HMAC-SHA256 of "<t>.<raw body>",
// tolerance 300 s, then JSON.parse) and answers 200 {"received":true}, or
// 400 with the reason. It publishes nothing: it is the comparison for the
// HTTP + verification work alone, as the issue asks.
//
//   PORT=3000 STRIPE_WEBHOOK_SECRET=whsec_... node server.js
// One process (Express's usual deployment). EXPRESS_WORKERS=N forks N
// processes with node:cluster, sharing the port, to see the multi-core case.
'use strict';

const cluster = require('node:cluster');
const express = require('express');
const Stripe = require('stripe');

const port = Number(process.env.PORT || 3000);
const secret = process.env.STRIPE_WEBHOOK_SECRET;
const workers = Number(process.env.EXPRESS_WORKERS || 1);
if (!secret) {
  console.error('STRIPE_WEBHOOK_SECRET is required');
  process.exit(2);
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', () => process.exit(1));
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    process.exit(0);
  });
} else {
  // Webhook verification needs no API key; the constructor wants a string.
  const stripe = Stripe('sk_test_bench_unused');
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (req, res) => res.type('text/plain').send('ok\n'));
  app.post('/webhooks/stripe', express.raw({ type: 'application/json', limit: '1mb' }),
    (req, res) => {
      let event;
      try {
        event = stripe.webhooks.constructEvent(req.body, req.get('stripe-signature'), secret);
      } catch (err) {
        res.status(400).json({ error: err.message });
        return;
      }
      if (typeof event.id !== 'string' || typeof event.type !== 'string') {
        res.status(400).json({ error: 'event has no id or type' });
        return;
      }
      res.json({ received: true });
    });
  const server = app.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
