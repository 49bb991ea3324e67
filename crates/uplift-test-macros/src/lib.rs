//! `#[engine_test]` turns one test body into two tests, `<name>::sqlite` and
//! `<name>::postgres`, so a failure names its engine and the two run in parallel.
//!
//! ```ignore
//! #[engine_test]
//! async fn stale_etags_are_refused(p: Platform) { … }
//! ```
//!
//! The test crate provides `crate::support::Engine` (with `Sqlite` and `Postgres`
//! variants) and `crate::support::run_on(engine, setup, body)`, which builds the thing
//! under test on that engine (or skips with a notice when PostgreSQL is unreachable
//! and not required) and runs `body` with it. `setup` is the attribute's argument, an
//! expression evaluated with `crate::support::*` in scope (`#[engine_test(Flows::Stopped)]`),
//! or `Default::default()`. An `async fn` becomes `#[tokio::test]`s awaiting
//! `run_on`; a plain `fn` becomes `#[test]`s calling it.

use proc_macro::TokenStream;
use quote::quote;
use syn::{Expr, ItemFn, parse_macro_input};

#[proc_macro_attribute]
pub fn engine_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let setup: Option<Expr> = if args.is_empty() {
        None
    } else {
        Some(parse_macro_input!(args as Expr))
    };
    let body = parse_macro_input!(item as ItemFn);
    if body.sig.inputs.len() != 1 {
        return syn::Error::new_spanned(
            &body.sig,
            "an #[engine_test] takes one argument: the thing under test, built on one engine",
        )
        .to_compile_error()
        .into();
    }
    let setup = match setup {
        Some(e) => quote! { { #[allow(unused_imports)] use crate::support::*; #e } },
        None => quote! { ::core::default::Default::default() },
    };
    let name = &body.sig.ident;
    let tests = ["sqlite", "postgres"].map(|engine| {
        let test = syn::Ident::new(engine, proc_macro2::Span::call_site());
        let variant = syn::Ident::new(
            if engine == "sqlite" { "Sqlite" } else { "Postgres" },
            proc_macro2::Span::call_site(),
        );
        let run = quote! { crate::support::run_on(crate::support::Engine::#variant, #setup, super::#name) };
        if body.sig.asyncness.is_some() {
            quote! { #[::tokio::test] async fn #test() { #run.await } }
        } else {
            // `let ()`: a body that is not async with a runner that is fails to
            // compile, rather than building a future that never runs.
            quote! { #[test] fn #test() { let () = #run; } }
        }
    });
    quote! {
        #body
        mod #name {
            #(#tests)*
        }
    }
    .into()
}
