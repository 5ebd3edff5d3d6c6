//! Seeds the fuzz corpora from real captures: `cargo run --bin seed -- CAPTURE...`
//! writes into `corpus/decode_dns` (each DNS payload), `corpus/decode_frame`
//! (each DNS-carrying frame, behind its link type selector) and
//! `corpus/tcp_stream` (each capture's DNS-over-TCP segments, in the target's
//! own segment encoding). File names are content hashes, so reruns add nothing twice.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use dnsq::ingest::capture::Capture;
use dnsq::ingest::link::{self, Packet};

fn save(dir: &Path, bytes: &[u8]) {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let path = dir.join(format!("{:016x}", h.finish()));
    if let Err(e) = std::fs::write(&path, bytes) {
        eprintln!("seed: {}: {e}", path.display());
        std::process::exit(1);
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let dirs = ["decode_dns", "decode_frame", "tcp_stream"].map(|d| root.join(d));
    for d in &dirs {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("seed: {}: {e}", d.display());
            std::process::exit(1);
        }
    }
    let (mut dns, mut frames, mut tcp_files) = (0, 0, 0);
    for arg in std::env::args().skip(1) {
        let cap = match Capture::open(Path::new(&arg)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("seed: skipped: {e}");
                continue;
            }
        };
        let walk = cap.walk(usize::MAX);
        let mut tcp = Vec::new();
        for chunk in &walk.chunks {
            cap.frames(chunk, |f| {
                let Ok(p) = link::decode_frame(&f, &[53, 5353]) else {
                    return;
                };
                if let Some(sel) = link::LINKTYPES.iter().position(|&l| l == f.linktype) {
                    let mut v = vec![sel as u8];
                    v.extend_from_slice(f.data);
                    save(&dirs[1], &v);
                    frames += 1;
                }
                let Packet::Whole(seg) = p else { return };
                match seg.tcp {
                    None => {
                        save(&dirs[0], seg.payload);
                        dns += 1;
                    }
                    Some(t) if tcp.len() < 64 * 1024 => {
                        let reply = seg.sport == 53;
                        let flags = u8::from(t.syn)
                            | u8::from(t.fin) << 1
                            | u8::from(t.rst) << 2
                            | u8::from(reply) << 3;
                        let mut seq = t.seq;
                        let pieces: Vec<&[u8]> = if seg.payload.is_empty() {
                            vec![&[]]
                        } else {
                            seg.payload.chunks(255).collect()
                        };
                        for piece in pieces {
                            tcp.push(flags);
                            tcp.extend_from_slice(&seq.to_be_bytes());
                            tcp.push(piece.len() as u8);
                            tcp.extend_from_slice(piece);
                            seq = seq.wrapping_add(piece.len() as u32);
                        }
                    }
                    Some(_) => {}
                }
            });
        }
        if !tcp.is_empty() {
            save(&dirs[2], &tcp);
            tcp_files += 1;
        }
    }
    println!("seed: {dns} DNS payloads, {frames} frames, {tcp_files} TCP streams");
}
