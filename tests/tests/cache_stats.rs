//! The process-wide map cache maps each file once: a second open of a live array (through any
//! handle on the container) makes no new map, dropping every handle unmaps it, and an open after
//! that maps afresh. `cache_stats` is process-global, so this binary holds exactly one test.

use dafstore::{cache_stats, Container, Layout};

#[test]
fn each_file_is_mapped_once_while_in_use_and_unmapped_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Container::create(&path).unwrap();
    c.write_dense::<f64>("x", &[100], &[1.5; 100]).unwrap();
    c.write_sparse::<f32, i32, i64>("s", Layout::Rows, [2, 3], &[1.0, 2.0], &[0, 2], &[0, 1, 2])
        .unwrap();
    c.write_dense::<f64>("empty", &[0], &[]).unwrap();

    let start = cache_stats();
    let a = c.open_dense::<f64>("x").unwrap();
    let after_first = cache_stats();
    assert_eq!(after_first.maps_created, start.maps_created + 1);
    assert_eq!(after_first.live_maps, start.live_maps + 1);

    let b = c.open_dense::<f64>("x").unwrap();
    let other_handle = Container::open(&path).unwrap();
    let d = other_handle.open_dense::<f64>("x").unwrap();
    let ro = Container::options().read_only(true).open(&path).unwrap();
    let e = ro.open_dense::<f64>("x").unwrap();
    assert_eq!(b.as_slice().as_ptr(), a.as_slice().as_ptr());
    assert_eq!(d.as_slice().as_ptr(), a.as_slice().as_ptr());
    assert_eq!(e.as_slice().as_ptr(), a.as_slice().as_ptr());
    assert_eq!(cache_stats(), after_first, "a second open made a map");

    // A sparse array maps its three non-empty files; a zero-size array maps nothing.
    let s = c.open_sparse("s").unwrap();
    let z = c.open_dense::<f64>("empty").unwrap();
    assert!(z.is_empty());
    let with_sparse = cache_stats();
    assert_eq!(with_sparse.maps_created, after_first.maps_created + 3);
    assert_eq!(with_sparse.live_maps, after_first.live_maps + 3);
    let s2 = c.open_sparse("s").unwrap();
    assert_eq!(s2.data_bytes().as_ptr(), s.data_bytes().as_ptr());
    assert_eq!(cache_stats(), with_sparse);

    // Dropping every handle unmaps.
    drop((a, b, d, e));
    assert_eq!(cache_stats().live_maps, with_sparse.live_maps - 1);
    drop((s, s2, z));
    let released = cache_stats();
    assert_eq!(released.live_maps, start.live_maps);
    assert_eq!(released.maps_created, with_sparse.maps_created);

    // A new open maps afresh.
    let again = c.open_dense::<f64>("x").unwrap();
    assert_eq!(again.as_slice(), &[1.5; 100]);
    let reopened = cache_stats();
    assert_eq!(reopened.maps_created, released.maps_created + 1);
    assert_eq!(reopened.live_maps, released.live_maps + 1);

    // A replace makes a fresh map for the new file; the old one lives while its handle does.
    c.write_dense::<f64>("x", &[2], &[7.0, 8.0]).unwrap();
    let new = c.open_dense::<f64>("x").unwrap();
    let replaced = cache_stats();
    assert_eq!(replaced.maps_created, reopened.maps_created + 1);
    assert_eq!(replaced.live_maps, reopened.live_maps + 1);
    assert_eq!(again.as_slice(), &[1.5; 100]);
    assert_eq!(new.as_slice(), &[7.0, 8.0]);
    drop(again);
    assert_eq!(cache_stats().live_maps, reopened.live_maps);
    drop(new);
    assert_eq!(cache_stats().live_maps, start.live_maps);

    // A table maps its one file once, however many opens and handles; its batches keep the map.
    let batch = dafstore::arrow_array::RecordBatch::try_from_iter([(
        "v",
        std::sync::Arc::new(dafstore::arrow_array::Int64Array::from(vec![1, 2, 3])) as _,
    )])
    .unwrap();
    c.write_table("t", batch.schema(), &[batch]).unwrap();
    let before = cache_stats();
    let t1 = c.open_table("t").unwrap();
    let t2 = other_handle.open_table("t").unwrap();
    let after = cache_stats();
    assert_eq!(after.maps_created, before.maps_created + 1);
    assert_eq!(after.live_maps, before.live_maps + 1);
    let kept = t1.batches()[0].clone();
    drop((t1, t2));
    assert_eq!(
        cache_stats().live_maps,
        after.live_maps,
        "a batch keeps the map"
    );
    drop(kept);
    assert_eq!(cache_stats().live_maps, before.live_maps);
}
