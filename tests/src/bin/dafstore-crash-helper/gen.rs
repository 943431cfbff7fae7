//! Deterministic array contents for the crash tests (shared by the helper process and the tests,
//! which include this file with `#[path]`): every array is derived from one `u64` seed stored in
//! its first element, so any reader can tell which generation it holds and check that every byte
//! of it belongs to that generation (a torn or mixed array fails the check).
#![allow(dead_code)]

use dafstore::{
    Allocation, Array, Container, CreateOptions, DType, IndexSlice, Layout, Lifecycle, OpenError,
    WriteError,
};

/// splitmix64: a good 64-bit mix, so contents depend on every bit of the seed.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A small deterministic generator (xorshift64*), seeded.
pub struct Rng(pub u64);

impl Rng {
    /// A generator whose sequence depends on `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The most elements of a dense array of an ordinary seed (one in four; the others have at most
/// 2,000).
pub const DENSE_MAX_LEN: u64 = 200_000;

/// The most bytes of the data files of a sparse array of [`sparse_parts`]: at most 40 rows of at
/// most 4 values (u64 data, u32 indices), 41 u64 row offsets.
pub const SPARSE_MAX_BYTES: u64 = 160 * 8 + 160 * 4 + 41 * 8;

/// The most bytes a table of [`write_table`] reserves (SPEC 9.7) and takes: its values (at most
/// [`DENSE_MAX_LEN`] u64 in two batches) plus a bound of the engine's reservation for the Arrow
/// file's header, schema, footer and the two record batch messages (`engine/src/table.rs`:
/// 64 KiB + 2 KiB per column, 4 KiB + 256 bytes + the alignment per batch), with room to spare.
pub const TABLE_MAX_BYTES: u64 = DENSE_MAX_LEN * 8 + 128 * 1024;

/// Seeds of big dense arrays carry this tag in their high 32 bits ([`big_seed`]); an ordinary
/// seed has it with probability 2^-32 ([`plain_seed`] clears it).
const BIG_TAG: u64 = 0xB16C_AC4E;

/// The most elements of a big dense array ([`big_seed`]): 8 MiB.
pub const BIG_MAX_LEN: u64 = 1 << 20;

/// The leading elements of a big dense array that are not zero (the last one is not zero
/// either).
const BIG_PREFIX: u64 = 2_000;

/// A seed of a big dense array made from `r`: 3/4 to all of [`BIG_MAX_LEN`] elements, of which
/// only the first 2,000 and the last are not zero, so that it can be written cheaply through a
/// map of a file with holes ([`write_cached`]): the kill loop's cached entries, as big as the
/// capacity needs them to be for writes to evict them often.
pub fn big_seed(r: u64) -> u64 {
    (BIG_TAG << 32) | (r & 0xFFFF_FFFF)
}

/// Whether `seed` is the seed of a big dense array ([`big_seed`]).
pub fn is_big(seed: u64) -> bool {
    seed >> 32 == BIG_TAG
}

/// `seed`, or another seed if it is one of a big dense array: every array of it is at most as
/// big as [`DENSE_MAX_LEN`], [`SPARSE_MAX_BYTES`] and [`TABLE_MAX_BYTES`] say.
pub fn plain_seed(seed: u64) -> u64 {
    if is_big(seed) {
        seed ^ (1 << 63)
    } else {
        seed
    }
}

/// The most elements of a dense array of [`small_seed`].
pub const SMALL_MAX_LEN: u64 = 2_000;

/// A seed made from `r` whose dense array has at most [`SMALL_MAX_LEN`] elements (16 KB): the
/// kill loop's batch entries, so that a batch of several of them in flight takes less than one
/// write of the biggest array (the capacity counts one write in flight per slot).
pub fn small_seed(r: u64) -> u64 {
    let mut s = plain_seed(r);
    while dense_len(s) > SMALL_MAX_LEN {
        s = plain_seed(mix(s));
    }
    s
}

/// The number of elements of the dense array of `seed`.
pub fn dense_len(seed: u64) -> u64 {
    let m = mix(seed);
    if is_big(seed) {
        return BIG_MAX_LEN - (m >> 8) % (BIG_MAX_LEN / 4);
    }
    let max = if m.is_multiple_of(4) {
        DENSE_MAX_LEN
    } else {
        SMALL_MAX_LEN
    };
    1 + (m >> 8) % max
}

/// The element `i` of a big dense array of `len` elements that is not zero, or `None`.
fn big_value(seed: u64, len: u64, i: u64) -> Option<u64> {
    if i == 0 {
        Some(seed)
    } else if i < BIG_PREFIX {
        Some(mix(seed ^ i))
    } else if i == len - 1 {
        Some(mix(!seed) | 1)
    } else {
        None
    }
}

/// The elements of the dense array of `seed`: `[seed, mix(seed ^ 1), mix(seed ^ 2), ...]`, of a
/// length from 1 to 2,000, or up to [`DENSE_MAX_LEN`] for one seed in four (so kills land in big
/// copies); for a seed of [`big_seed`], zeros after the first 2,000 but the last.
pub fn dense_values(seed: u64) -> Vec<u64> {
    let len = dense_len(seed);
    if is_big(seed) {
        let mut v = vec![0u64; len as usize]; // zeroed pages, not written
        for i in (0..BIG_PREFIX.min(len)).chain([len - 1]) {
            v[i as usize] = big_value(seed, len, i).unwrap_or(0);
        }
        return v;
    }
    (0..len)
        .map(|i| if i == 0 { seed } else { mix(seed ^ i) })
        .collect()
}

/// [`dense_values`] as little-endian bytes (without a copy of every element for a big array).
pub fn dense_bytes(seed: u64) -> Vec<u8> {
    if !is_big(seed) {
        return le(&dense_values(seed));
    }
    let len = dense_len(seed);
    let mut b = vec![0u8; len as usize * 8];
    for i in (0..BIG_PREFIX.min(len)).chain([len - 1]) {
        let v = big_value(seed, len, i).unwrap_or(0);
        b[i as usize * 8..][..8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// The text of a failed write: a [`WriteError::Capacity`] starts with [`FULL`], so that a caller
/// that only has the text can tell "nothing published, the container is full" from a failure.
pub fn write_err(e: WriteError) -> String {
    match e {
        WriteError::Capacity { .. } => format!("{FULL}{e}"),
        e => e.to_string(),
    }
}

/// The start of the text of a write that failed with [`WriteError::Capacity`].
pub const FULL: &str = "capacity: ";

/// Writes the dense array of `seed` with `lifecycle` (`None`: the default, which inside
/// `open_or_load`'s loader is the load's, `cached` by default). A big one ([`big_seed`]) through
/// a map of a file with holes (`create_dense_with`: only its non-zero pages are written), any
/// other from a slice (`write_dense_bytes_with`).
pub fn write_cached(
    c: &Container,
    name: &str,
    seed: u64,
    lifecycle: Option<Lifecycle>,
) -> Result<(), String> {
    let len = dense_len(seed);
    if !is_big(seed) {
        let opts = CreateOptions {
            lifecycle,
            ..CreateOptions::default()
        };
        return c
            .write_dense_bytes_with(name, DType::UInt64, &[len], &dense_bytes(seed), &opts)
            .map_err(write_err);
    }
    let opts = CreateOptions {
        allocation: Allocation::Holes,
        lifecycle,
        ..CreateOptions::default()
    };
    let mut w = c
        .create_dense_with(name, DType::UInt64, &[len], opts)
        .map_err(write_err)?;
    let v = w.as_mut_slice::<u64>().map_err(|e| e.to_string())?;
    for i in (0..BIG_PREFIX.min(len)).chain([len - 1]) {
        v[i as usize] = big_value(seed, len, i).unwrap_or(0);
    }
    w.publish().map_err(write_err)
}

/// The sparse array of `seed` (compressed rows): shape, data (`data[0]` is the seed), indices,
/// indptr.
pub struct SparseParts {
    /// `[rows, columns]`.
    pub shape: [u64; 2],
    /// nnz values.
    pub data: Vec<u64>,
    /// Column of each value.
    pub indices: Vec<u32>,
    /// Row offsets.
    pub indptr: Vec<u64>,
}

/// The sparse array of `seed`: 1–40 rows, 1–40 columns, every row 0–4 sorted distinct columns,
/// at least one value.
pub fn sparse_parts(seed: u64) -> SparseParts {
    let mut rng = Rng::new(seed ^ 0x5151);
    let rows = 1 + rng.below(40);
    let cols = 1 + rng.below(40);
    let mut indices = Vec::new();
    let mut indptr = vec![0u64];
    for r in 0..rows {
        let want = rng.below(cols.min(4) + 1).max(u64::from(r == 0));
        let mut cs: Vec<u32> = Vec::new();
        while (cs.len() as u64) < want {
            let c = rng.below(cols) as u32;
            if !cs.contains(&c) {
                cs.push(c);
            }
        }
        cs.sort_unstable();
        indices.extend_from_slice(&cs);
        indptr.push(indices.len() as u64);
    }
    let data = (0..indices.len() as u64)
        .map(|i| if i == 0 { seed } else { mix(seed ^ (i << 1)) })
        .collect();
    SparseParts {
        shape: [rows, cols],
        data,
        indices,
        indptr,
    }
}

/// Writes the dense array of `seed` through a mapped writer (create, fill, publish).
pub fn publish_dense_mapped(c: &Container, name: &str, seed: u64) -> Result<(), String> {
    let v = dense_values(seed);
    let mut w = c
        .create_dense::<u64>(name, &[v.len() as u64])
        .map_err(write_err)?;
    w.as_mut_slice::<u64>()
        .map_err(|e| e.to_string())?
        .copy_from_slice(&v);
    w.publish().map_err(write_err)
}

/// Writes the dense array of `seed` from a slice.
pub fn write_dense(c: &Container, name: &str, seed: u64) -> Result<(), String> {
    let v = dense_values(seed);
    c.write_dense::<u64>(name, &[v.len() as u64], &v)
        .map_err(write_err)
}

/// Writes the sparse array of `seed`.
pub fn write_sparse(c: &Container, name: &str, seed: u64) -> Result<(), String> {
    let p = sparse_parts(seed);
    c.write_sparse::<u64, u32, u64>(name, Layout::Rows, p.shape, &p.data, &p.indices, &p.indptr)
        .map_err(write_err)
}

/// Writes the table of `seed`: one column `v` of the dense values of `seed`, in two batches.
pub fn write_table(c: &Container, name: &str, seed: u64) -> Result<(), String> {
    use dafstore::arrow_array::{RecordBatch, UInt64Array};
    let v = dense_values(seed);
    let (a, b) = v.split_at(v.len() / 2);
    let batch = |s: &[u64]| {
        RecordBatch::try_from_iter([("v", std::sync::Arc::new(UInt64Array::from(s.to_vec())) as _)])
            .map_err(|e| e.to_string())
    };
    let (a, b) = (batch(a)?, batch(b)?);
    c.write_table(name, a.schema(), &[a, b]).map_err(write_err)
}

/// Checks that `a` is exactly the generation its first element names; returns that seed.
pub fn verify_array(a: &Array) -> Result<u64, String> {
    match a {
        Array::Table(t) => {
            use dafstore::arrow_array::cast::AsArray;
            use dafstore::arrow_array::types::UInt64Type;
            let v: Vec<u64> = t
                .batches()
                .iter()
                .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
                .collect();
            let seed = *v.first().ok_or("empty table")?;
            if v != dense_values(seed) {
                return Err(format!("table of seed {seed} has other contents"));
            }
            Ok(seed)
        }
        Array::Dense(d) => {
            let v: &[u64] = d.as_slice().map_err(|e| e.to_string())?;
            let seed = *v.first().ok_or("empty dense array")?;
            if v != dense_values(seed).as_slice() {
                return Err(format!("dense array of seed {seed} has other contents"));
            }
            Ok(seed)
        }
        Array::Sparse(s) => {
            let data: &[u64] = s.data().map_err(|e| e.to_string())?;
            let seed = *data.first().ok_or("empty sparse array")?;
            let p = sparse_parts(seed);
            let IndexSlice::U32(ind) = s.indices() else {
                return Err("indices are not uint32".into());
            };
            let IndexSlice::U64(ptr) = s.indptr() else {
                return Err("indptr is not uint64".into());
            };
            if s.shape() != p.shape || data != p.data || ind != p.indices || ptr != p.indptr {
                return Err(format!("sparse array of seed {seed} has other contents"));
            }
            Ok(seed)
        }
    }
}

/// Opens `name` and verifies it: `Ok(None)` if there is no such array.
pub fn open_and_verify(c: &Container, name: &str) -> Result<Option<u64>, String> {
    match c.open_array(name) {
        Ok(a) => verify_array(&a)
            .map(Some)
            .map_err(|e| format!("{name}: {e}")),
        Err(OpenError::NotFound { .. }) => Ok(None),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

/// What a reader without our code sees ([R1]): the seed of the complete, checksum-verified array
/// `name` if its metadata file exists, `Ok(None)` if it does not, an error for anything torn.
pub fn read_by_spec(root: &std::path::Path, name: &str) -> Result<Option<u64>, String> {
    if !root.join(format!("{name}.yaml")).exists() {
        return Ok(None);
    }
    let files = dafstore::internals::inspect::read_array_files(root, name, true)
        .map_err(|e| format!("{name}: visible but not readable by the spec: {e}"))?;
    if let dafstore::ArrayMeta::Table(_) = files.meta {
        // Read with arrow-ipc's own reader (the file was validated by `read_array_files`).
        use dafstore::arrow_array::cast::AsArray;
        use dafstore::arrow_array::types::UInt64Type;
        let reader =
            arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(files.bytes(0)), None)
                .map_err(|e| format!("{name}: visible but not an Arrow file: {e}"))?;
        let mut v = Vec::new();
        for b in reader {
            let b = b.map_err(|e| format!("{name}: {e}"))?;
            v.extend_from_slice(b.column(0).as_primitive::<UInt64Type>().values());
        }
        let seed = *v
            .first()
            .ok_or_else(|| format!("{name}: visible and empty"))?;
        if v != dense_values(seed) {
            return Err(format!("{name}: table is not generation {seed}"));
        }
        return Ok(Some(seed));
    }
    let first = files.bytes(0);
    if first.len() < 8 {
        return Err(format!("{name}: visible with {} bytes", first.len()));
    }
    let seed = u64::from_le_bytes(first[..8].try_into().unwrap_or([0; 8]));
    let expect: Vec<Vec<u8>> = match files.meta {
        dafstore::ArrayMeta::Dense(_) => vec![dense_bytes(seed)],
        dafstore::ArrayMeta::Table(_) => Vec::new(),
        dafstore::ArrayMeta::Sparse(_) => {
            let p = sparse_parts(seed);
            let ind: Vec<u8> = p.indices.iter().flat_map(|v| v.to_le_bytes()).collect();
            vec![le(&p.data), ind, le(&p.indptr)]
        }
    };
    for (i, e) in expect.iter().enumerate() {
        if files.bytes(i) != e.as_slice() {
            return Err(format!("{name}: file {i} is not generation {seed}"));
        }
    }
    Ok(Some(seed))
}

fn le(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
