//! Every model's output pinned, capture and ground truth: a change to the
//! generator must keep the bytes, or change a pin on purpose (and say why).
//! The pins are FNV-1a 64 of the files the generator wrote before it became
//! a crate of its own (`deguchi gen`, same arguments).

use deguchi_synth::cli::{GenArgs, run};

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `deguchi gen` with `args` (after the scenario); (capture, truth) hashes.
fn gen_hashes(scenario: &str, args: &[&str]) -> (u64, u64) {
    use clap::Parser;
    #[derive(Parser)]
    struct Gen {
        #[command(flatten)]
        args: GenArgs,
    }
    let d = tempfile::tempdir().unwrap();
    let (pcap, truth) = (d.path().join("c.pcap"), d.path().join("c.json"));
    let mut argv = vec!["gen", scenario, "-o", pcap.to_str().unwrap()];
    argv.extend_from_slice(&["--truth", truth.to_str().unwrap()]);
    argv.extend_from_slice(args);
    let g = Gen::try_parse_from(argv).unwrap();
    run(&g.args).unwrap();
    (
        fnv1a(&std::fs::read(pcap).unwrap()),
        fnv1a(&std::fs::read(truth).unwrap()),
    )
}

#[test]
fn every_model_writes_the_pinned_bytes() {
    let cases: &[(&str, &[&str], u64, u64)] = &[
        ("sample", &[], 0xaf90_5f08_a862_547d, 0x3397_3b54_7bc6_068b),
        (
            "office",
            &["--hosts", "6", "--days", "0.2", "--seed", "3"],
            0x78b8_a3c2_bb68_c769,
            0x9f5b_1e23_03d5_e32b,
        ),
        (
            "office",
            &["--hosts", "6", "--days", "0.2", "--no-malicious"],
            0x1cad_1dd5_faae_0464,
            0x6ebb_e7e4_2115_71e1,
        ),
        (
            "exfil",
            &["--hosts", "6", "--days", "0.3"],
            0xd417_ecd1_0c65_e0cd,
            0x187c_9de5_ab1a_b383,
        ),
        (
            "bench",
            &["--packets", "20000"],
            0xfb1a_01c9_4c46_c615,
            0xeaab_a1e8_3ccd_361c,
        ),
        (
            "bench",
            &["--packets", "20000", "--snaplen", "128"],
            0x3fc7_b254_887c_c766,
            0xeaab_a1e8_3ccd_361c,
        ),
        (
            "mix",
            &["--packets", "20000"],
            0x221b_c541_67f5_bab9,
            0x647d_d68f_354c_0f9b,
        ),
        (
            "mix",
            &[
                "--packets",
                "20000",
                "--hosts",
                "100",
                "--seed",
                "7",
                "--snaplen",
                "128",
            ],
            0x1e3e_a9e8_b034_1d5b,
            0xd9b1_96f7_9aca_84df,
        ),
        (
            "flood",
            &["--flows", "20000"],
            0x8658_9e6b_f747_6d00,
            0x8385_c4d6_8158_365e,
        ),
    ];
    for (scenario, args, pcap, truth) in cases {
        let got = gen_hashes(scenario, args);
        assert_eq!(
            got,
            (*pcap, *truth),
            "gen {scenario} {args:?}: capture/truth hashes {:#x}/{:#x}",
            got.0,
            got.1
        );
    }
}
