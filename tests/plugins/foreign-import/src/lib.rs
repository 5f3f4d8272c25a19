//! A filter of the current contract that also imports `acme:shell/run`, an
//! interface no Aetherius host provides (standing for anything outside the
//! plugin's WASI surface: `wasi:http`, WASI 0.3, another host's API). The
//! host must refuse it when loading, naming the import.

wit_bindgen::generate!({
    inline: r#"
        package acme:shell@0.1.0;

        interface run {
            run: func(command: string) -> string;
        }

        world foreign-filter {
            include aetherius:plugin/filter@0.1.4;
            import run;
        }
    "#,
    path: "../../../wit",
    world: "acme:shell/foreign-filter@0.1.0",
    generate_all,
});

struct Foreign;

impl Guest for Foreign {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn filter(events: u32) -> Vec<Verdict> {
        let answer = acme::shell::run::run("id");
        (0..events).map(|_| Verdict::Drop(answer.clone())).collect()
    }
}

export!(Foreign);
