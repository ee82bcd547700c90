%% bench_counting — one producer process sends the integers 1..N to one
%% counter process, then asks for the sum; the counter replies with it.
%% Timed from "go" to the reported sum.
-module(bench_counting).
-export([main/1]).

main(Args) ->
    N = bench_common:arg(Args, 1, 5000000),
    Counter = spawn(fun() -> counter(0) end),
    Main = self(),
    Producer = spawn(fun() -> receive go -> produce(Counter, 1, N, Main) end end),
    T0 = bench_common:now_s(),
    Producer ! go,
    Sum = receive {sum, S} -> S
          after 600000 -> bench_common:fail("counting: timed out", [])
          end,
    Secs = bench_common:now_s() - T0,
    Want = N * (N + 1) div 2,
    Sum =:= Want orelse bench_common:fail("counting: sum ~p, expected ~p", [Sum, Want]),
    bench_common:result("counting", N, Secs, "msgs_per_s", N / Secs, "").

produce(Counter, I, N, Main) when I =< N ->
    Counter ! I,
    produce(Counter, I + 1, N, Main);
produce(Counter, _, _, Main) ->
    Ref = make_ref(),
    Counter ! {get, self(), Ref},
    receive {Ref, Sum} -> Main ! {sum, Sum} end.

counter(Sum) ->
    receive
        I when is_integer(I) -> counter(Sum + I);
        {get, From, Ref} -> From ! {Ref, Sum}
    end.
