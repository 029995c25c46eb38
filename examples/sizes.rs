fn main() {
    println!(
        "flow event={} flow record={}",
        std::mem::size_of::<deguchi::flow::table::FlowEvent>(),
        std::mem::size_of::<deguchi::flow::record::FlowRecord>()
    );
    println!("bytes_per_flow={}", deguchi::flow::table::bytes_per_flow());
    println!(
        "beacon bytes_per_pair(64)={}",
        deguchi::detect::beacon::Beacon::bytes_per_pair(64)
    );
    println!(
        "exfil host={} pair={} (+{} with slot history)",
        deguchi::detect::exfil::Exfil::bytes_per_host(),
        deguchi::detect::exfil::Exfil::bytes_per_pair(),
        deguchi::detect::exfil::Exfil::bytes_per_pair_rings()
    );
}
