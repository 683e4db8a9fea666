//! `func!`, the one procedural macro of Ember (re-exported as `ember::func!`; documented there).
//!
//! Architecture invariant: this crate only rewrites tokens. It knows nothing of RDDs; the code it
//! generates calls `::ember::__private`, whose contract is written in `ember/src/func.rs`.

mod captures;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprClosure, Ident, Token};

/// A closure whose captured values are sent with it to executors. See `ember::func!`.
#[proc_macro]
pub fn func(input: TokenStream) -> TokenStream {
    match syn::parse::<FuncInput>(input) {
        Ok(input) => expand(input).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// One entry of an explicit capture list: `name` or `name = expression`.
struct Capture {
    name: Ident,
    init: Option<Expr>,
}

impl Parse for Capture {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = input.parse()?;
        let init = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Capture { name, init })
    }
}

/// `[captures] closure` or `closure`.
struct FuncInput {
    explicit: Option<Vec<Capture>>,
    closure: ExprClosure,
}

impl Parse for FuncInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let explicit = if input.peek(syn::token::Bracket) {
            let content;
            syn::bracketed!(content in input);
            Some(
                Punctuated::<Capture, Token![,]>::parse_terminated(&content)?
                    .into_iter()
                    .collect(),
            )
        } else {
            None
        };
        let closure = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "func! takes a closure, optionally after a capture list: `func!(move |x| x * k)` \
                 or `func!([k = 2 * n] move |x| x * k)`",
            )
        })?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the closure"));
        }
        Ok(FuncInput { explicit, closure })
    }
}

fn expand(FuncInput { explicit, closure }: FuncInput) -> TokenStream2 {
    let moves = closure.capture.is_some();
    // How each captured value is taken: moved (`move` closures) or cloned (a closure that
    // would have borrowed it: the variable stays usable after the macro).
    let take = |name: &Ident| {
        if moves {
            quote!(#name)
        } else {
            quote!(::core::clone::Clone::clone(&#name))
        }
    };
    let captures: Vec<(Ident, TokenStream2)> = match explicit {
        Some(list) => list
            .into_iter()
            .map(|c| {
                let value = match c.init {
                    Some(e) => quote!(#e),
                    None => take(&c.name),
                };
                (c.name, value)
            })
            .collect(),
        None => captures::captured_variables(&closure)
            .into_iter()
            .map(|n| (n.clone(), take(&n)))
            .collect(),
    };
    let ExprClosure {
        attrs,
        inputs,
        output,
        body,
        ..
    } = &closure;
    if captures.is_empty() {
        // Nothing to send: the closure is zero-sized as it is.
        return quote!(#(#attrs)* move |#inputs| #output #body);
    }
    let values = captures
        .iter()
        .map(|(name, value)| quote_spanned!(name.span()=> ::ember::__private::capturable(#value)));
    let bindings = captures.iter().enumerate().map(|(i, (name, _))| {
        let index = syn::Index::from(i);
        quote_spanned! {name.span()=>
            #[allow(unused_variables, clippy::needless_borrow)]
            let #name = (&::ember::__private::Captured(&__ember_captured.#index)).get();
        }
    });
    let span = closure.span();
    // The site type names this macro invocation: executors find the captured values of the
    // closure by it. The closure itself captures only `__ember_key`, a zero-sized handle.
    quote_spanned! {span=> {
        struct __EmberSite;
        let __ember_key = ::ember::__private::stash::<__EmberSite, _>(
            (#(#values,)*),
            ::core::file!(),
            ::core::line!(),
        );
        #(#attrs)* move |#inputs| #output {
            ::ember::__private::with_captured(__ember_key, move |__ember_captured| {
                #[allow(unused_imports)]
                use ::ember::__private::{ByCopy as _, ByRef as _};
                #(#bindings)*
                #body
            })
        }
    }}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(src: &str) -> String {
        expand(syn::parse_str(src).expect("input")).to_string()
    }

    #[test]
    fn a_closure_without_captures_is_left_as_it_is() {
        let out = expanded("|x| x + 1");
        assert!(!out.contains("stash"), "{out}");
        assert!(out.starts_with("move |"), "{out}");
    }

    #[test]
    fn move_closures_move_and_others_clone() {
        assert!(expanded("move |x| x + k").contains("capturable (k)"));
        assert!(expanded("|x| x + k").contains("Clone :: clone (& k)"));
    }

    #[test]
    fn an_explicit_list_takes_what_it_says() {
        let out = expanded("[k = 2 * n, s] move |x| x + k + s.len() + other");
        assert!(
            out.contains("capturable (2 * n)") && out.contains("capturable (s)"),
            "{out}"
        );
        assert!(!out.contains("other)"), "{out}");
    }

    #[test]
    fn rejects_what_is_not_a_closure() {
        assert!(syn::parse_str::<FuncInput>("foo").is_err());
        assert!(syn::parse_str::<FuncInput>("|x| x, extra").is_err());
    }
}
