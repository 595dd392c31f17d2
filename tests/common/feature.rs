//! Fleet test files that need the `etcd` feature stay visible in a default build: each says
//! [`needs_etcd_feature!`] once, which (without the feature) adds one test that is *ignored* with
//! the command to run, and that *fails* under `CI` unless the CI script declares that it runs the
//! feature pass too (`TICKETD_ETCD_PASS_FOLLOWS=1`, set by `.ci/run` on its default pass): a CI
//! that never builds the feature cannot report the fleet tests as passed.

/// Without the `etcd` feature: one visible test for this file (see the module doc).
#[macro_export]
macro_rules! needs_etcd_feature {
    () => {
        #[cfg(not(feature = "etcd"))]
        #[test]
        #[cfg_attr(not(ci), ignore = "needs --features etcd: cargo test --features etcd --test <this file>")]
        fn the_fleet_tests_of_this_file_need_the_etcd_feature() {
            $crate::common::feature::without_the_feature(file!());
        }
    };
}

/// The body of the stub test: under `CI` it passes only when the feature pass follows; run by
/// hand (`--ignored`) it fails, saying how to run the file's tests.
#[allow(dead_code)]
pub fn without_the_feature(file: &str) {
    let follows = std::env::var_os("TICKETD_ETCD_PASS_FOLLOWS").is_some_and(|v| v == "1");
    assert!(
        std::env::var_os("CI").is_some() && follows,
        "{file}: built without the `etcd` feature, so its fleet tests did not run: cargo test --features etcd --test {}",
        std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("fleet")
    );
}
