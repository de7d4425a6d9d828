fn main() {
    println!("kcptun version {}", env!("CARGO_PKG_VERSION"));
}
