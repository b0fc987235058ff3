//! Mapping throughput on a realistic mix: identify with 20 traits (dates among them),
//! track with 10 properties, and a page. Run with `cargo bench -p inmoment-host`.
//!
//! `identify_track_page_mix` gives each event away (`map_event_owned`), as a caller that
//! parsed it for mapping can; copying the events happens outside the measurement, the way
//! parsing does. `identify_track_page_mix_borrowed` maps borrowed events (`map_event`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use inmoment_core::{map_event, map_event_owned, AccountToken, Event, Settings, UserState};
use serde_json::json;

/// The allocator the `inmoment-destination` binary uses, so the figure is the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn events() -> Vec<Event> {
    let identify = json!({
        "type": "identify", "messageId": "b-1", "userId": "user-1001",
        "traits": {
            "email": "maria.lopez@example.com", "createdAt": "2024-03-17T08:21:44.640Z",
            "language": "es", "name": "María López", "firstName": "María", "lastName": "López",
            "plan": "business", "seats": 12, "trialEndsAt": "2024-04-16", "lastLogin": "2026-11-02T09:15:20Z",
            "company": {"name": "Acme SL", "industry": "retail"}, "title": "CTO", "phone": "+34 600 000 000",
            "country": "ES", "city": "Madrid", "mrr_amount": 4900, "active": true, "role": "admin",
            "renewal_date": "2027-01-01", "source": "partner"
        },
        "context": {"ip": "203.0.113.7", "locale": "es-ES", "userAgent": "Mozilla/5.0"}
    });
    let track = json!({
        "type": "track", "messageId": "b-2", "userId": "user-1001", "event": "Invoice Paid",
        "properties": {
            "amount_amount": 4900, "currency": "EUR", "paidAt": "2026-11-02T09:15:20Z",
            "invoice_id": "inv_88121", "method": "card", "country": "ES", "items": 3,
            "coupon": "AUTUMN", "first": false, "plan": "business"
        }
    });
    let page = json!({
        "type": "page", "messageId": "b-3", "userId": "user-1001", "name": "Billing", "category": "Settings",
        "properties": {"url": "https://app.example.com/settings/billing", "path": "/settings/billing",
                        "title": "Billing", "referrer": "https://app.example.com/dashboard"}
    });
    [identify, track, page]
        .into_iter()
        .map(|v| Event::from_value(v, None).expect("bench event"))
        .collect()
}

fn mapping(c: &mut Criterion) {
    let registry = inmoment_host::linked::registry().expect("registry");
    let settings = Settings::new(AccountToken::parse("NPS-4aeb53c1").expect("token"));
    let events = events();
    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("identify_track_page_mix", |b| {
        b.iter_batched(
            || events.clone(),
            |owned| {
                for event in owned {
                    let output = map_event_owned(
                        &registry,
                        black_box(event),
                        UserState::default(),
                        &settings,
                    )
                    .expect("maps");
                    black_box(output);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("identify_track_page_mix_borrowed", |b| {
        b.iter(|| {
            for event in &events {
                let output =
                    map_event(&registry, black_box(event), UserState::default(), &settings)
                        .expect("maps");
                black_box(output);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
