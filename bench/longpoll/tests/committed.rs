//! bench/longpoll.asl.json is what the pipeline definition generates (`make asl`).

use std::path::Path;

#[test]
fn the_committed_longpoll_state_machine_is_what_the_definition_generates() {
    std::env::set_current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
    let plan = pipeline::Plan::load(Path::new(pipeline::DEFAULT_DEFINITION)).unwrap();
    let expected = longpoll_baseline::asl::longpoll_state_machine(&plan).unwrap();
    let committed = std::fs::read_to_string("bench/longpoll.asl.json").unwrap();
    if let Some(diff) = pipeline::docs::first_difference(&expected, &committed) {
        panic!("bench/longpoll.asl.json is stale ({diff}); run `make asl`");
    }
}
