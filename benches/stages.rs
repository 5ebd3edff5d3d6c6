//! Criterion benches of the hot stages on real traffic (data/sample.pcap):
//! frame decode, DNS decode, pairing, Arrow batch building, Parquet writing.
//! `cargo bench --bench stages`; the end-to-end figures come from benches/e2e.sh.

#![allow(clippy::unwrap_used)] // bench set-up: a failed unwrap is a broken bench

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dnsq::dataset::schema;
use dnsq::ingest::capture::Capture;
use dnsq::ingest::correlate::{Correlator, Observed};
use dnsq::ingest::link::{self, Packet, Transport};
use dnsq::ingest::{batch, dns, write};
use parquet::arrow::ArrowWriter;

fn stages(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap");
    let cap = Capture::open(&path).unwrap();
    let walk = cap.walk(usize::MAX);
    let mut frames = Vec::new();
    for chunk in &walk.chunks {
        cap.frames(chunk, |f| frames.push(f));
    }
    let mut udp = Vec::new();
    for f in &frames {
        if let Ok(Packet::Whole(s)) = link::decode_frame(f, &[53]) {
            if s.tcp.is_none() {
                udp.push((f.ts_ns, f.number, s));
            }
        }
    }
    let msgs: Vec<Observed> = udp
        .iter()
        .map(|(ts, frame, s)| Observed {
            ts_ns: *ts,
            capture: 0,
            frame: *frame,
            src: s.src,
            dst: s.dst,
            sport: s.sport,
            dport: s.dport,
            transport: Transport::Udp,
            tunnels: Default::default(),
            msg: Box::new(dns::decode(s.payload, true).unwrap()),
            logged: None,
        })
        .collect();
    let pair = |msgs: Vec<Observed>| {
        let mut c = Correlator::new(10_000_000_000);
        for m in msgs {
            c.push(m);
        }
        c.finish()
    };
    let txs = pair(msgs.clone());
    let names = batch::Rows::plain(vec![path.display().to_string()]);
    let mut memo = batch::Memo::default();
    let spooled = batch::build(txs.clone(), &names, &mut memo).unwrap();
    let rows = write::unspool(&spooled, &mut memo).unwrap();

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("decode_frame", |b| {
        b.iter(|| {
            for f in &frames {
                let _ = black_box(link::decode_frame(f, &[53]));
            }
        })
    });
    g.throughput(Throughput::Elements(udp.len() as u64));
    g.bench_function("decode_dns", |b| {
        b.iter(|| {
            for (_, _, s) in &udp {
                black_box(dns::decode(s.payload, true));
            }
        })
    });
    g.bench_function("pairing", |b| {
        b.iter_batched(
            || msgs.clone(),
            |m| black_box(pair(m)),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(txs.len() as u64));
    g.bench_function("batch_build", |b| {
        b.iter_batched(
            || txs.clone(),
            |t| black_box(batch::build(t, &names, &mut batch::Memo::default()).unwrap()),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("parquet_write", |b| {
        b.iter(|| {
            let mut w = ArrowWriter::try_new(
                Vec::new(),
                schema::TRANSACTIONS.clone(),
                Some(write::properties()),
            )
            .unwrap();
            w.write(&rows).unwrap();
            black_box(w.into_inner().unwrap().len())
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
