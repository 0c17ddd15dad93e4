//! Generates the ONNX protobuf types from `proto/onnx.proto` (copied verbatim from the `onnx`
//! Python package 1.23, Apache-2.0) with prost. `protox` parses the schema in Rust, so no `protoc`
//! binary is needed on a fresh machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
