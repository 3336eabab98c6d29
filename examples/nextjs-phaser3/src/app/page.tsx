import Game from './Game';

export default function Page() {
  return (
    <main>
      <Game />
    </main>
  );
}
