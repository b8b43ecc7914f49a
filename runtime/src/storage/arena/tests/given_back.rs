//! Chunks given back when their pieces all come back: carved again, their
//! stale free entries never handed out, the first few keeping their
//! pages, the lists swept.

use super::*;

#[test]
fn a_chunk_whose_pieces_all_come_back_is_given_back_and_carved_again() {
    let arena = Arena::default();
    let n = if cfg!(miri) { 300 } else { 2000 };
    let first: Vec<FrozenBlock> = (0..n).map(|i| arena.alloc(&bytes(200, i as u8))).collect();
    let held = arena.chunk_bytes();
    assert!(arena.chunk_sizes().len() >= 3, "{:?}", arena.chunk_sizes());
    assert_eq!(arena.given_back_bytes(), 0, "every chunk holds live pieces");
    drop(first);
    let carving = *arena.chunk_sizes().last().unwrap();
    assert_eq!(
        arena.given_back_bytes(),
        held - carving,
        "every chunk but the one being carved is given back"
    );
    // Pieces of another size, more than the chunk being carved has room
    // for and fewer than were given back, take the chunks given back: no
    // new chunk.
    let piece = piece_bytes(296);
    let m = (arena.carving_room() + arena.given_back_bytes() * 3 / 4) / piece;
    let second: Vec<(FrozenBlock, Vec<u8>)> = (0..m)
        .map(|i| {
            let want = bytes(296, i as u8);
            (arena.alloc(&want), want)
        })
        .collect();
    assert_eq!(arena.chunk_bytes(), held, "no chunk was added");
    assert!(arena.given_back_bytes() < held - carving);
    assert_apart(&second);
}

#[test]
fn the_first_chunks_emptied_keep_their_pages_and_are_carved_first() {
    use super::super::chunks::KEPT_CHUNKS;
    let arena = Arena::default();
    // 2,000-byte pieces over the small chunks (16 to 256 KiB) and more:
    // seven chunks (few pieces: Miri runs this).
    let blocks: Vec<FrozenBlock> = (0..400)
        .map(|i| arena.alloc(&bytes(2_000, i as u8)))
        .collect();
    let sizes = arena.chunk_sizes();
    assert!(sizes.len() > KEPT_CHUNKS + 1, "{sizes:?}");
    drop(blocks);
    // Freed in order: the first chunks to empty keep their pages; the
    // others are returned (counted out where `madvise` works: Linux, not
    // Miri); the one being carved is neither.
    let kept: usize = sizes[..KEPT_CHUNKS].iter().sum();
    let returned: usize = sizes[KEPT_CHUNKS..sizes.len() - 1].iter().sum();
    assert_eq!(arena.with_state(|s| s.kept_bytes()), kept);
    assert_eq!(arena.given_back_bytes(), kept + returned);
    let counted_out = arena.with_state(|s| s.counted_out_bytes());
    let linux = cfg!(all(target_os = "linux", not(miri)));
    assert_eq!(counted_out, if linux { returned } else { 0 });
    // Pieces of another size, until two kept chunks were carved again (the
    // first one carved moved a returned chunk ahead of the others in the
    // list): no returned chunk was carved (none is counted in again), and
    // no chunk was added.
    let piece = piece_bytes(2_600);
    let mut more: Vec<(FrozenBlock, Vec<u8>)> = Vec::new();
    while arena.with_state(|s| s.kept_bytes()) > kept - sizes[0] - sizes[1] {
        assert!(more.len() * piece < kept, "the kept chunks were carved");
        let want = bytes(2_600, more.len() as u8);
        more.push((arena.alloc(&want), want));
        assert_eq!(arena.with_state(|s| s.counted_out_bytes()), counted_out);
    }
    assert_eq!(arena.chunk_sizes(), sizes, "no chunk was added");
    assert_apart(&more);
    // Emptied, the chunks the new pieces took keep their pages: the one
    // that was being carved and the first kept one (the second is being
    // carved now: neither kept nor returned). Four kept again.
    drop(more);
    let last = sizes[sizes.len() - 1];
    assert_eq!(arena.with_state(|s| s.kept_bytes()), kept - sizes[1] + last);
}

#[test]
fn free_pieces_of_a_chunk_given_back_are_never_handed_out_again() {
    let arena = Arena::default();
    let n = if cfg!(miri) { 200 } else { 1500 };
    // Two sizes, interleaved: the chunks hold both.
    let mut small = Vec::new();
    let mut large = Vec::new();
    for i in 0..n {
        small.push(arena.alloc(&bytes(40, i as u8)));
        large.push(arena.alloc(&bytes(400, i as u8)));
    }
    // Free the small ones (free entries, chunks still live), then the
    // large ones (the chunks go back: the small entries go stale).
    drop(small);
    drop(large);
    assert!(arena.given_back_bytes() > 0);
    // A third size carves the chunks again; then small pieces: none may
    // be a stale entry lying in a piece handed out since.
    let mut live: Vec<(FrozenBlock, Vec<u8>)> = Vec::new();
    for i in 0..n {
        let want = bytes(120, i as u8);
        live.push((arena.alloc(&want), want));
    }
    for i in 0..n {
        let want = bytes(40, i as u8 ^ 0x55);
        live.push((arena.alloc(&want), want));
    }
    assert_apart(&live);
}

#[test]
fn an_emptied_chunk_being_carved_starts_again_in_place() {
    let arena = Arena::default();
    let first: Vec<FrozenBlock> = (0..50).map(|i| arena.alloc(&bytes(200, i))).collect();
    let start = first[0].as_ptr() as usize - HEADER;
    drop(first);
    assert_eq!(arena.chunk_sizes().len(), 1);
    // More than the chunk has left: it starts again (nothing in it is
    // live), neither given back nor joined by another.
    let big = arena.alloc(&bytes(arena.carving_room() + 100, 3));
    assert_eq!(arena.chunk_sizes().len(), 1, "no new chunk");
    assert_eq!(arena.given_back_bytes(), 0, "the chunk was kept");
    assert_eq!(
        big.as_ptr() as usize - HEADER,
        start,
        "carved from its start"
    );
    // The old free entries are stale: a block of the old size is carved
    // after the big one, not put over it.
    let again = arena.alloc(&bytes(200, 4));
    assert!(again.as_ptr() as usize > big.as_ptr() as usize + big.len());
}

#[test]
fn a_chunks_generation_wrapping_never_brings_a_stale_entry_back() {
    let arena = Arena::default();
    let freed = arena.alloc(&bytes(200, 1));
    let _kept = arena.alloc(&bytes(200, 2));
    let old = freed.as_ptr();
    drop(freed);
    // Its entry goes stale (generation 0 -> 1) and stays on the list, too
    // few to sweep, while 2^32 - 2 more generations go by...
    arena.with_state(|s| s.make_stale_for_test(0));
    arena.with_state(|s| s.set_generation_for_test(0, u32::MAX));
    // ...and the next wraps to the entry's own generation.
    arena.with_state(|s| s.make_stale_for_test(0));
    let again = arena.alloc(&bytes(200, 3));
    assert_ne!(again.as_ptr(), old, "a stale entry was handed out");
}

#[test]
fn stale_entries_are_swept_and_the_free_lists_shrink() {
    let arena = Arena::default();
    // Pieces of 40 bytes: the first chunks full (16 to 128 KiB: 6,144
    // pieces; under Miri, whose threshold is lower, 16 KiB: 409), the
    // rest in the next one, being carved.
    let (n, full, given_back) = if cfg!(miri) {
        (700, 409, 16 << 10)
    } else {
        (12_000, 6144, (16 + 32 + 64 + 128) << 10)
    };
    assert!(full >= super::super::chunks::STALE_SWEEP && 2 * full >= n);
    let blocks: Vec<FrozenBlock> = (0..n).map(|i| arena.alloc(&bytes(24, i as u8))).collect();
    drop(blocks);
    // Every chunk but the one being carved is given back; their entries
    // went stale, past the threshold and half of all: swept, and the
    // lists' memory with them. The carved chunk's entries stay.
    let (entries, capacity) = arena.free_entries();
    assert_eq!(arena.given_back_bytes(), given_back);
    assert!(
        (n - full..n - full + 8).contains(&entries),
        "{entries}: only the carved chunk's entries left (and a chunk's end or two)"
    );
    assert!(capacity < 2 * entries, "capacity {capacity} for {entries}");
}
